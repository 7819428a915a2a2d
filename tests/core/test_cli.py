"""The `zppo` console script dispatches to the package that owns each subcommand."""

from flows.zppo_cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_core_demo_runs_one_step_of_algorithm_1(capsys):
    assert main(["core-demo", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    # q-banana: 2/8 correct -> hard; q-easy: 7/8 -> not hard
    assert "[hard]   tau=0.5: ['q-banana']" in out
    assert "uid=q-banana:bcq:0" in out and "uid=q-banana:ncq:0" in out
    assert "The following answers are all WRONG: \\boxed{3}, \\boxed{4}." in out
    assert "now holds ['q-banana']" in out

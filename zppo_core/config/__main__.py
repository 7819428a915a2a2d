"""``python -m zppo_core.config > configs/paper.yaml``: every key with the paper's value, under its
help (the schema's own comments, :mod:`zppo_core.config.field_help`)."""

from zppo_core.config import Config
from zppo_core.config.field_help import commented_yaml

HEADER = (
    "# The paper's setting (arXiv 2606.18216, Tab. 8 and App. B). Every key of the typed config,\n"
    "# with the paper's values, under its help. Generated -- do not edit by hand; after changing a\n"
    "# field or its comment in zppo_core/config/schema.py:\n"
    "#   python -m zppo_core.config > configs/paper.yaml\n"
    "# Smaller profiles (configs/tiny.yaml) set only what they change.\n"
    "# cluster: the paper's layout, 8 nodes x 8 GPUs per training run, on every node 6 GPUs train\n"
    "# (FSDP2 over 48 ranks) and 2 serve the 27B teacher/judge; executor: local runs on one host,\n"
    "# executor: slurm submits each stage as a batch job (docs/cluster.md).\n"
)

if __name__ == "__main__":
    print(HEADER)
    print(commented_yaml(Config()), end="")

"""Run by test_engines_vllm_inprocess.py with the ``.venv-vllm`` interpreter: one training rank
(torch.distributed world of 1, gloo) with its student engine started the colocated way
(``external_launcher``, per-rank seed, explicit lengths) and weights synced IN MEMORY from a
live torch module, parameter by parameter. Prints one JSON line with what it observed."""

from __future__ import annotations

import json
import os
import sys


def main(model_dir: str, perturbed_dir: str) -> dict:
    import torch
    import torch.distributed as torch_dist
    from safetensors.torch import load_file

    from zppo_core.engines.base import GenerationRequest, SamplingParams
    from zppo_core.engines.vllm_engine import VLLMBackend, colocate_kwargs
    from zppo_core.trainer.weight_sync import iter_full_params

    torch_dist.init_process_group("gloo", rank=0, world_size=1)
    kw = colocate_kwargs(rank=0, world=1, seed=0, max_model_len=256, max_num_batched_tokens=256, in_process=True)
    be = VLLMBackend(model_dir, dtype="bfloat16", enforce_eager=True, **kw)
    report: dict = {"executor": kw.get("distributed_executor_backend"), "in_process": be.in_process}
    reqs = [GenerationRequest([{"role": "user", "content": f"What is {a} + 4?"}]) for a in range(3)]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    outputs = lambda: [s.token_ids for x in be.generate(reqs, 1, greedy) for s in x]  # noqa: E731


    def module_of(folder):
        state = {}
        for f in sorted(os.listdir(folder)):
            if f.endswith(".safetensors"):
                state.update(load_file(os.path.join(folder, f)))
        return state

    report["before"] = outputs()
    pert = module_of(perturbed_dir)
    report["streamed"] = 0

    def stream(state):
        for name, t in state.items():
            report["streamed"] += 1
            yield name, t.to(torch.bfloat16)

    be.load_weights(stream(pert))
    report["after"] = outputs()
    be.load_weights(stream(module_of(model_dir)))
    report["restored"] = outputs()
    # the trainer's generator over a live module: names + full bf16 tensors
    model = torch.nn.Linear(2, 3)
    report["iter_names"] = [(n, str(t.dtype)) for n, t in iter_full_params(model, torch.bfloat16)]
    torch_dist.destroy_process_group()
    return report


if __name__ == "__main__":
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(k, v)
    if "MASTER_PORT" not in os.environ:
        from zppo_core.engines.vllm_server import free_port

        os.environ["MASTER_PORT"] = str(free_port())
    print("REPORT " + json.dumps(main(sys.argv[1], sys.argv[2])), flush=True)

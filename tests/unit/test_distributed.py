"""Data parallelism under torchrun (gloo, 2 CPU processes): every split analysis gives the results
of one process; a rank that dies fails the run and leaves a resumable store; two simulated nodes
write the bytes of one process."""

import os
import subprocess
import sys

import pytest
import torch

from interp import distributed
from interp.cache import ActivationStore
from tests.unit.test_cache import ROOT, _digest, _run_worker

WORKER_ARGS = ["resid_pre,resid_mid,resid_post,attn_out,mlp_out", "last,span_last,answer_first,answer_last"]


def _torchrun(script, args, *, port, nproc=2, extra=(), env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), *extra]
    if not extra:
        cmd += ["--master-port", str(port)]
    return subprocess.Popen([*cmd, str(ROOT / "tests" / script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_one_process_splits_nothing():
    assert distributed.world() == 1 and not distributed.active() and distributed.is_main()
    assert distributed.mine(5) == [0, 1, 2, 3, 4]
    assert distributed.gather_indexed({1: "b", 0: "a"}, 2) == ["a", "b"]
    with pytest.raises(RuntimeError, match=r"work items \[2\] were computed by no rank"):
        distributed.gather_indexed({0: "a", 1: "b"}, 3)


@pytest.mark.slow
def test_two_ranks_give_the_results_of_one_process(tiny_gemma_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    one = subprocess.run([sys.executable, str(ROOT / "tests" / "parallel_worker.py"), str(tiny_gemma_dir),
                          str(tmp_path / "one.pt")], env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    proc = _torchrun("parallel_worker.py", [tiny_gemma_dir, tmp_path / "two.pt"], port=29547)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert set(a) == set(b) and len(a) == 9
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].shape == b[key].shape, key
            assert a[key].abs().max() > 1e-3, key  # a sweep of zeros would match trivially
            assert torch.allclose(a[key], b[key], atol=1e-4, rtol=0), (key, (a[key] - b[key]).abs().max())
        else:
            assert a[key] == b[key], key  # the same texts, greedy and sampled
    assert len(a["greedy"]) == 24 and len(a["sampled"]) == 16 and len(a["sampled"][0]) == 2


@pytest.fixture(scope="module")
def one_process(tiny_gemma_dir, tmp_path_factory):
    """The store one process writes (60 examples, shards of 8, every hook and position)."""
    out = tmp_path_factory.mktemp("one-process") / "store"
    _run_worker(tiny_gemma_dir, out, 60, 8)
    return out


@pytest.mark.slow
def test_two_ranks_write_the_bytes_of_one_process(tiny_gemma_dir, one_process, tmp_path):
    proc = _torchrun("cache_worker.py", [tiny_gemma_dir, tmp_path / "two", 60, 8, *WORKER_ARGS], port=29533)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert ActivationStore.open(tmp_path / "two").complete
    assert _digest(tmp_path / "two") == _digest(one_process)


@pytest.mark.slow
def test_a_dying_rank_fails_the_run_and_the_store_resumes(tiny_gemma_dir, one_process, tmp_path):
    proc = _torchrun("cache_worker.py", [tiny_gemma_dir, tmp_path / "two", 60, 8, *WORKER_ARGS], port=29549,
                     env={"INTERP_TEST_DIE_RANK": "1", "INTERP_DIST_TIMEOUT": "60"})
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0
    assert "exitcode  : 3" in err and "rank      : 1" in err  # torchrun names the rank that died
    part = ActivationStore.open(tmp_path / "two", partial=True) if (tmp_path / "two" / "manifest.json").exists() else None
    assert part is None or not part.complete
    _run_worker(tiny_gemma_dir, tmp_path / "two", 60, 8)  # one process finishes what is missing
    assert ActivationStore.open(tmp_path / "two").complete
    assert _digest(tmp_path / "two") == _digest(one_process)


@pytest.mark.slow
def test_two_simulated_nodes_write_the_bytes_of_one_process(tiny_gemma_dir, one_process, tmp_path):
    rdzv = ["--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:29551", "--rdzv-id", "interp-test"]
    nodes = [_torchrun("cache_worker.py", [tiny_gemma_dir, tmp_path / "two", 60, 8, *WORKER_ARGS], port=0, nproc=1,
                       extra=[*rdzv, "--node-rank", str(k)]) for k in (0, 1)]
    for node in nodes:
        _, err = node.communicate(timeout=600)
        assert node.returncode == 0, err[-3000:]
    assert ActivationStore.open(tmp_path / "two").complete
    assert _digest(tmp_path / "two") == _digest(one_process)

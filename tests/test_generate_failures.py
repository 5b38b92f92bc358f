"""A large generation run never aborts on one molecule: failures are recorded, others go on."""
import json

import numpy as np
import pytest

from dcmnet.errors import DataError
from dcmnet.generate import molecules, runner
from dcmnet.generate.molecules import MoleculeSpec


def test_embedding_failure_is_recorded_not_raised(monkeypatch):
    real = molecules.embed_conformers

    def embed(spec, *a, **k):
        if spec.name == "bad":
            raise DataError("RDKit could not embed 'X' (bad).")
        return real(spec, *a, **k)

    monkeypatch.setattr(molecules, "embed_conformers", embed)
    pytest.importorskip("rdkit")
    specs = [MoleculeSpec("water", 0, smiles="O"), MoleculeSpec("bad", 0, smiles="O"),
             MoleculeSpec("methanol", 0, smiles="CO")]
    failures = {}
    jobs = runner.plan_jobs(specs, runner.GenerateSettings(n_conformers=2), failures=failures)
    assert [j.name for j in jobs] == ["water", "water", "methanol", "methanol"]
    assert failures == {"bad": "RDKit could not embed 'X' (bad)."}
    with pytest.raises(DataError):
        runner.plan_jobs(specs, runner.GenerateSettings(n_conformers=2))


def test_qm_exception_is_recorded(monkeypatch, tmp_path):
    calls = []

    def compute(job, settings, out_dir):
        calls.append(job.key)
        if job.name == "boom":
            raise RuntimeError("PySCF exploded")
        return job.key, 0.0

    monkeypatch.setattr(runner, "compute_job", compute)
    Z, R = np.array([8, 1, 1]), np.zeros((3, 3))
    jobs = [runner.Job("boom__0000", "boom", Z, R, 0), runner.Job("ok__0000", "ok", Z, R, 0)]
    stats = runner.run_jobs(jobs, tmp_path, runner.GenerateSettings(), workers=1,
                            progress=False)
    assert calls == ["boom__0000", "ok__0000"]          # the second job still ran
    assert stats["computed"] == 1
    assert stats["failed"] == {"boom__0000": "RuntimeError: PySCF exploded"}
    rec = json.loads((tmp_path / "failed" / "boom__0000.json").read_text())
    assert rec["error"] == "RuntimeError: PySCF exploded"

"""Run reference-data generation: plan conformer jobs, compute them in worker processes,
resume after interruption, split into shards, and merge results into a canonical dataset.

Work folder layout::

    WORKDIR/settings.json          level of theory and grid (a resumed run must match)
    WORKDIR/conformers/NAME__K.npz one finished conformer (written atomically)
    WORKDIR/failed/NAME__K.json    why a conformer failed (retried on the next run)

Each conformer is one job; a job whose file exists is never recomputed, so an interrupted
run (Ctrl-C, SIGKILL, a cluster time limit) resumes where it stopped. ``shard=(i, n)`` takes
every n-th job starting at i, so an array job of n tasks covers the list exactly once.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from dcmnet.data.dataset import Dataset, open_npz, read_array
from dcmnet.fileio import atomic_path, atomic_write_json
from dcmnet.errors import DataError
from dcmnet.surface import DEFAULT_DENSITY, DEFAULT_SHELLS, vdw_shell_points


@dataclasses.dataclass
class GenerateSettings:
    """Level of theory, ESP grid and conformer sampling of a generation run."""

    method: str = "b3lyp"
    basis: str = "def2-svp"
    density_fit: bool = True
    grid_level: int = 1
    shells: tuple = DEFAULT_SHELLS
    density: float = DEFAULT_DENSITY
    n_conformers: int = 10
    seed: int = 0
    optimize: bool = True
    displacement: float = 0.05

    def physics(self) -> dict:
        """The fields that must agree between runs writing to one work folder."""
        d = dataclasses.asdict(self)
        d["shells"] = [float(s) for s in self.shells]
        return d


@dataclasses.dataclass
class Job:
    """One conformer to compute."""

    key: str
    name: str
    Z: np.ndarray
    R: np.ndarray
    net_charge: int


def plan_jobs(specs, settings: GenerateSettings, failures: dict | None = None) -> list[Job]:
    """All conformer jobs of a list of :class:`~dcmnet.generate.molecules.MoleculeSpec`.

    Args:
        specs: the molecules.
        settings: conformer sampling (``n_conformers``, ``seed``, ...).
        failures: if given, a molecule whose conformers cannot be made (RDKit embedding
            fails) is recorded here as ``{name: reason}`` and skipped, so one bad molecule
            never aborts a large set; if None, the :class:`DataError` propagates.
    """
    from dcmnet.generate.molecules import embed_conformers

    jobs = []
    for m, spec in enumerate(specs):
        try:
            confs = embed_conformers(spec, settings.n_conformers, seed=settings.seed + m,
                                     optimize=settings.optimize,
                                     displacement=settings.displacement)
        except DataError as exc:
            if failures is None:
                raise
            failures[spec.name] = str(exc)
            continue
        for k, (Z, R) in enumerate(confs):
            jobs.append(Job(f"{spec.name}__{k:04d}", spec.name, Z, R, spec.net_charge))
    return jobs


def _atomic_savez(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    try:
        from pyscf import lib
        lib.num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def compute_job(job: Job, settings: GenerateSettings, out_dir: str) -> tuple[str, float]:
    """Compute one conformer and write ``out_dir/conformers/KEY.npz``; returns (key, seconds)."""
    from dcmnet.generate.qm import compute_conformer

    grid = vdw_shell_points(job.Z, job.R, settings.shells, settings.density)
    res = compute_conformer(job.Z, job.R, job.net_charge, grid, settings.method,
                            settings.basis, settings.density_fit, settings.grid_level)
    path = Path(out_dir) / "conformers" / f"{job.key}.npz"
    _atomic_savez(path, Z=np.asarray(job.Z, np.int32), R=np.asarray(job.R, np.float64),
                  grid=grid.astype(np.float64), esp=res["esp"], dipole=res["dipole"],
                  mono=res["mono"], net_charge=np.array(float(job.net_charge)),
                  energy=np.array(res["energy"]), seconds=np.array(res["seconds"]),
                  name=np.array(job.name))
    return job.key, res["seconds"]


def _check_settings(workdir: Path, settings: GenerateSettings) -> None:
    path = workdir / "settings.json"
    new = settings.physics()
    if path.exists():
        old = json.loads(path.read_text())
        diff = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
        if diff:
            raise DataError(
                f"{workdir}: this work folder was started with other settings "
                + ", ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
                + ". Use a new --workdir or the same settings.")
    else:
        atomic_write_json(path, new)


def _reason(exc: BaseException) -> str:
    """A failure's reason as stored in ``failed/KEY.json`` (type named unless DataError)."""
    return str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"


def run_jobs(jobs: list[Job], workdir: str | Path, settings: GenerateSettings,
             workers: int = 1, shard: tuple[int, int] = (0, 1), progress: bool = True) -> dict:
    """Compute every pending job of this shard; returns counts and failures.

    Returns:
        dict with ``done`` (already present), ``computed``, ``failed`` ({key: message}),
        ``pending`` (jobs of this shard), ``seconds`` (summed worker time).
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    workdir = Path(workdir).resolve()
    (workdir / "conformers").mkdir(parents=True, exist_ok=True)
    (workdir / "failed").mkdir(exist_ok=True)
    _check_settings(workdir, settings)
    i, n = shard
    mine = [j for t, j in enumerate(jobs) if t % n == i]
    todo = [j for j in mine if not (workdir / "conformers" / f"{j.key}.npz").exists()]
    stats = {"pending": len(mine), "done": len(mine) - len(todo), "computed": 0,
             "failed": {}, "seconds": 0.0}
    if not todo:
        return stats
    columns = [TextColumn("[bold]QM[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"{settings.method}/{settings.basis}", total=len(todo))

        def finish(job, fut_result=None, exc=None):
            failed = workdir / "failed" / f"{job.key}.json"
            if exc is None:
                stats["computed"] += 1
                stats["seconds"] += fut_result[1]
                if failed.exists():
                    failed.unlink()
            else:
                stats["failed"][job.key] = str(exc)
                atomic_write_json(failed, {"key": job.key, "error": str(exc)}, indent=None)
                bar.console.print(f"[yellow]failed[/] {job.key}: {exc}")
            bar.advance(task)

        if workers <= 1:
            _worker_init()
            for job in todo:
                try:
                    finish(job, compute_job(job, settings, str(workdir)))
                except Exception as exc:  # noqa: BLE001 - recorded; the set never aborts
                    finish(job, exc=_reason(exc))
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=_worker_init) as pool:
                futs = {pool.submit(compute_job, j, settings, str(workdir)): j for j in todo}
                for fut in as_completed(futs):
                    try:
                        finish(futs[fut], fut.result())
                    except Exception as exc:  # noqa: BLE001 - recorded; never aborts
                        finish(futs[fut], exc=_reason(exc))
    return stats


def package_versions() -> dict:
    """Versions of the packages that determine generated data."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("dcmnet", "pyscf", "rdkit", "numpy", "ase"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def merge(workdirs, out: str | Path, command: str | None = None,
          expected_keys: list[str] | None = None) -> tuple[Dataset, dict]:
    """Combine the finished conformers of one or more work folders into a canonical dataset.

    Writes ``out`` (compressed NPZ) and ``<out without .npz>.provenance.json``.

    Raises:
        DataError: no finished conformers, work folders with different settings, or (when
            ``expected_keys`` is given) conformers still missing.
    """
    workdirs = [Path(w).resolve() for w in workdirs]
    settings = None
    files = []
    for w in workdirs:
        sp = w / "settings.json"
        if not sp.exists():
            raise DataError(f"{w}: not a dcmnet generate work folder (no settings.json).")
        s = json.loads(sp.read_text())
        if settings is not None and s != settings:
            raise DataError(f"{w}: settings differ from {workdirs[0]}; cannot merge.")
        settings = s
        files += sorted((w / "conformers").glob("*.npz"))
    by_key = {f.stem: f for f in files}
    if expected_keys is not None:
        missing = [k for k in expected_keys if k not in by_key]
        if missing:
            raise DataError(f"{len(missing)} conformers are not finished yet (e.g. {missing[:3]}); "
                            "run the remaining shards or rerun the same command to resume.")
        keys = list(expected_keys)
    else:
        keys = sorted(by_key)
    if not keys:
        raise DataError("no finished conformers to merge.")
    mols, seconds = [], []
    for k in keys:
        with open_npz(by_key[k]) as z:
            mols.append({f: read_array(z, f, by_key[k]) for f in
                         ("Z", "R", "grid", "esp", "dipole", "mono")})
            mols[-1]["net_charge"] = float(z["net_charge"])
            mols[-1]["name"] = str(z["name"])
            seconds.append(float(z["seconds"]))
    ds = Dataset.from_molecules(mols, source=str(out))
    names = sorted(set(ds.name.tolist()))
    charges = {n: float(ds.net_charge[ds.name == n][0]) for n in names}
    prov = {
        "generator": "dcmnet generate",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "method": settings["method"],
        "method_note": ("PySCF 'b3lyp' is B3LYP with VWN-RPA (VWN3) correlation, as in "
                        "Gaussian" if settings["method"].lower() == "b3lyp" else None),
        "basis": settings["basis"],
        "density_fitting": settings["density_fit"],
        "dft_grid_level": settings["grid_level"],
        "esp_grid": {"shells_x_vdw_radius": settings["shells"],
                     "points_per_A2": settings["density"],
                     "radii": "ase.data.vdw_radii (Bondi 1964 for H, C, N, O, F)",
                     "points_inside_other_atoms_removed": True},
        "conformers": {"embedding": "RDKit ETKDGv3", "mmff_optimized": settings["optimize"],
                       "random_displacement_A": settings["displacement"],
                       "seed": settings["seed"]},
        "reference_charges": "ESP-fitted monopoles, net charge constrained (dcmnet.fitting)",
        "dipole_origin": "centre of mass (ASE atomic masses)",
        "units": {"R": "Angstrom", "grid": "Angstrom", "esp": "Hartree/e", "dipole": "e*Angstrom",
                  "mono": "e", "net_charge": "e"},
        "versions": package_versions(),
        "n_molecules": len(names),
        "n_conformers": len(ds),
        "molecules": {n: {"net_charge": charges[n],
                          "conformers": int((ds.name == n).sum())} for n in names},
        "n_grid_points": int(ds.n_grid.sum()),
        "qm_cpu_seconds": round(float(np.sum(seconds)), 1),
    }
    out = Path(out)
    ds.save(out, compressed=True, metadata=prov)
    prov_path = out.with_suffix("").with_suffix(".provenance.json") \
        if out.suffix == ".npz" else Path(str(out) + ".provenance.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(prov_path, prov)
    return ds, prov

"""The trajectory model behind the `trajectory` searcher and scheduler: every evaluation point is an observation.

    model = TrajectoryModel(space, objectives, constraints, references, hv_reference, epochs=Epochs(...), seed=0)
    model.observe("t1", {"lr": 1e-3, "epochs": 15}, epoch=3, metrics={"forget_quality": 1e-4, ...})
    model.fit()
    params, score = model.propose(running={"t2": {...}}, exclude=[...])     # the next configuration
    model.chance_to_improve("t1", params, done_epoch=3)                     # P(a later point adds HV)

A sweep's trial is a trajectory of evaluation points, each a candidate for the front. The model regresses every
searched metric (the objectives on their search scale, and each constraint's metric) on (configuration, point):
one Gaussian process per metric (scikit-learn's `GaussianProcessRegressor`, Matern 5/2 with one length scale per
input, a white-noise term, hyperparameters fitted by marginal likelihood) over the configuration's encoding
(`Encoding`: log / linear ranges and ordered numeric choices on [0, 1], other choices one-hot) and two point
coordinates: the epoch over the longest run, and the epoch over the run's own length (where the learning-rate
schedule is). Curves that cross are no problem for it: a point is predicted from similar configurations at the
same stage of their run, not ranked by where a run stands now.

Acquisition (the trajectory form of expected hypervolume improvement, after TMOBO, Wang, Fan & Ng, UAI 2025):
for a candidate configuration, draw joint samples of all its evaluation points from the posterior (per metric,
the points of one run are sampled jointly, so a sampled trajectory is coherent), keep the sampled points that
satisfy every constraint (the constraint is a constraint, not a penalty: an infeasible point adds nothing), and
measure the hypervolume they add to the current feasible front (`sweeps.selection.pareto.hypervolume`, moocore's exact
algorithm) in the minimisation space against `hv_reference`. The score is that expected improvement per epoch of
compute, so a short run that promises as much as a long one wins. Running trials count as if they had
delivered their predicted mean (so two slots do not chase the same region).

Run length (when the space searches the epoch count): the longest run first. A run of the longest length is
evaluated at every epoch, so its trajectory holds a candidate at every stage of unlearning, and the stopping rule
ends it where the rest is not worth running; a shorter run is the same configuration with a faster-annealing
schedule, and on every measured table the longest runs alone hold >= 0.98 of the grid's front (docs/search.md).
So with `longest_first` (the default) a configuration with a shorter run length is a candidate only when no
longest-run configuration is left to try (in a continuous space: never; the epoch count is set to the longest).
Scoring shorter runs beside long ones from the start (`longest_first=False`) spends the first trials on cheap,
uncertain short runs (measured: the worst table's median fell from 0.91 to 0.65 of the grid's front at 25%).

The same samples, conditioned on a running trial's points so far, give the chance that any of its remaining
points is feasible and adds hypervolume (`chance_to_improve`) and the improvement per remaining epoch
(`continue_score`): what the stopping rule (`sweeps.search.scheduling.trajectory`) reads.

Ray-free and Optuna-free: it takes Optuna distributions only to read their ranges.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sweeps.spec.objectives import Constraint, Objective
from sweeps.selection.pareto import hypervolume
from sweeps.search.trajectory_candidates import Candidates
from sweeps.search.trajectory_space import Encoding, Epochs

LOG_FLOOR_MARGIN = 2.0  # a log objective is clipped this far (decades) beyond the reference: worse is all "nothing"
MIN_GAIN = 0.01         # an improvement counts when it adds at least this fraction of the front's hypervolume
POINTS_PER_RUN = 8      # the GP is fitted on at most this many points per run (evenly spread, the last included)
LENGTH_SCALES = (5e-2, 2e1)  # bounds of the kernel's length scales on the unit-cube inputs
REFIT_GROWTH = 1.3      # kernel hyperparameters are re-fitted when the data grew by this factor since the last fit


# --------------------------------------------------------------------------------------------------
# the model


@dataclass
class _Obs:
    params: dict[str, Any]
    epoch: float
    values: dict[str, float]     # metric -> searched value (finite), clipped where it says


class TrajectoryModel(Candidates):
    """See the module docstring."""

    def __init__(self, space: Mapping[str, Any], objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 references: Mapping[str, float], hv_reference: Sequence[float], epochs: Epochs, seed: int = 0,
                 samples: int = 32, longest_first: bool = True):
        self.encoding = Encoding(space)
        self.longest_first = bool(longest_first)
        self.objectives, self.constraints = list(objectives), list(constraints)
        self.references = dict(references)
        self.hv_reference = [float(r) for r in hv_reference]
        self.epochs = epochs
        self.seed = int(seed)
        self.samples = int(samples)
        # every metric the model predicts: the objectives' (searched scale) and each constraint's (raw)
        self.metrics = list(dict.fromkeys([o.name for o in self.objectives] + [c.metric for c in self.constraints]))
        self.obs: dict[str, list[_Obs]] = {}     # trial key -> its observed points, in order
        self.params: dict[str, dict[str, Any]] = {}
        self._gps: dict[str, Any] = {}
        self._fitted_n = -1
        self._hyper_n = 0   # how many observations the kernel hyperparameters were fitted on
        self._kernels: dict[str, Any] = {}  # metric -> its fitted kernel (hyperparameters)

    def __getstate__(self) -> dict[str, Any]:
        """The observations, settings and fitted kernel hyperparameters; the GPs themselves are not kept (they
        are conditioned again on the observations with those kernels, so a restored model predicts the same)."""
        state = dict(self.__dict__)
        state.update(_gps={}, _fitted_n=-1)  # the kernels and when they were fitted stay: the same fits follow
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("longest_first", False)  # a search saved before the rule continues as it began
        self.__dict__.update(state)

    # ---- observations ------------------------------------------------------------------------------

    def _searched(self, metric: str, metrics: Mapping[str, Any]) -> float | None:
        obj = next((o for o in self.objectives if o.name == metric), None)
        if obj is None:
            x = metrics.get(metric)
            return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None
        v = obj.searched(metrics)
        if v is None:
            return None
        if obj.scale == "log":  # beyond the reference every value means "nothing forgotten": clip the tail
            i = self.objectives.index(obj)
            floor = -self.hv_reference[i] - LOG_FLOOR_MARGIN if obj.mode == "max" else None
            if floor is not None:
                v = max(v, floor)
        return v

    def observe(self, key: str, params: Mapping[str, Any], epoch: float, metrics: Mapping[str, Any]) -> bool:
        """Record one evaluation point of trial `key`; False when it carries no usable value (a failure report)."""
        values = {m: v for m in self.metrics if (v := self._searched(m, metrics)) is not None}
        if not values or epoch is None or not (isinstance(epoch, (int, float)) and epoch > 0):
            return False
        self.params[key] = dict(params)
        pts = self.obs.setdefault(key, [])
        if any(abs(o.epoch - float(epoch)) < 1e-9 for o in pts):
            return False  # a resumed trial reported this point again
        pts.append(_Obs(dict(params), float(epoch), values))
        return True

    @property
    def n_obs(self) -> int:
        return sum(len(v) for v in self.obs.values())

    @property
    def version(self) -> tuple[int, int]:
        """What the model's predictions depend on besides the question: the observations it holds (points are
        only ever added) and when its kernels were last fitted. Equal versions answer `outlook` alike."""
        return self.n_obs, self._hyper_n

    def features(self, params: Mapping[str, Any], epochs: Sequence[float]) -> np.ndarray:
        base = self.encoding.encode(params)
        length = self.epochs.length(params)
        rows = [np.concatenate([base, [e / self.epochs.longest, e / length]]) for e in epochs]
        return np.asarray(rows, dtype=float)

    # ---- fitting ------------------------------------------------------------------------------------

    def _training_points(self) -> list[_Obs]:
        """At most POINTS_PER_RUN points of each run, evenly spread over it, its last point included."""
        out = []
        for pts in self.obs.values():
            if len(pts) <= POINTS_PER_RUN:
                out.extend(pts)
                continue
            idx = sorted({int(round(i)) for i in np.linspace(len(pts) - 1, 0, POINTS_PER_RUN)})
            out.extend(pts[i] for i in idx)
        return out

    def fit(self, refit_hyper: bool | None = None) -> bool:
        """Fit one GP per metric on the observations (False with too few to fit). The kernel's hyperparameters
        are fitted again when `refit_hyper`, or (None) when the data grew by REFIT_GROWTH since they were;
        otherwise the GP is conditioned on the new data with the kernel it has."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        if self.n_obs < 3:
            return False
        if self._fitted_n == self.n_obs and self._gps:
            return True
        if refit_hyper is None:
            refit_hyper = not self._kernels or self.n_obs >= REFIT_GROWTH * self._hyper_n
        if refit_hyper:
            self._hyper_n = self.n_obs
        train = self._training_points()
        for metric in self.metrics:
            rows, ys = [], []
            for o in train:
                if metric in o.values:
                    rows.append(self.features(o.params, [o.epoch])[0])
                    ys.append(o.values[metric])
            if len(ys) < 3:
                continue
            X, y = np.asarray(rows), np.asarray(ys)
            previous = self._kernels.get(metric)
            if previous is not None and not refit_hyper:
                kernel, optimizer = previous, None
            else:
                d = X.shape[1]
                kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(d, 0.5), LENGTH_SCALES, nu=2.5)
                          + WhiteKernel(1e-2, (1e-5, 1e0)))
                optimizer = "fmin_l_bfgs_b"
            gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=optimizer,
                                          n_restarts_optimizer=0, random_state=self.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gp.fit(X, y)
            self._gps[metric] = gp
            self._kernels[metric] = gp.kernel_
        self._fitted_n = self.n_obs
        return bool(self._gps)

    def ready(self) -> bool:
        return all(m in self._gps for m in self.metrics)

    # ---- prediction -------------------------------------------------------------------------------

    def _predict(self, params: Mapping[str, Any], epochs: Sequence[float], **how: bool) -> dict[str, Any]:
        """metric -> its GP's prediction at the run's points (`how`: return_std / return_cov, as sklearn)."""
        X = self.features(params, epochs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {metric: gp.predict(X, **how) for metric, gp in self._gps.items()}

    def _sample(self, params: Mapping[str, Any], epochs: Sequence[float], n: int,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
        """metric -> (n, len(epochs)) joint posterior samples of the run's points."""
        out = {}
        for metric, (mean, cov) in self._predict(params, epochs, return_cov=True).items():
            cov = 0.5 * (cov + cov.T) + 1e-9 * np.eye(len(epochs))
            try:
                chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                chol = np.diag(np.sqrt(np.clip(np.diag(cov), 0, None)))
            out[metric] = mean[None, :] + rng.standard_normal((n, len(epochs))) @ chol.T
        return out

    def _mean(self, params: Mapping[str, Any], epochs: Sequence[float]) -> dict[str, np.ndarray]:
        return self._predict(params, epochs)

    def _vectors(self, values: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(minimisation-space vectors [..., n_obj], feasibility mask [...]) of sampled/predicted metrics."""
        vecs = np.stack([(-values[o.name] if o.mode == "max" else values[o.name]) for o in self.objectives], axis=-1)
        feasible = np.ones(vecs.shape[:-1], dtype=bool)
        for c in self.constraints:
            x = values[c.metric]
            obj = next((o for o in self.objectives if o.name == c.metric), None)
            if obj is not None and obj.scale == "log":  # the model holds log10 values; the bound is raw
                x = np.power(10.0, x)
            bound = c.threshold(self.references.get(c.metric)) if (
                c.relative_to is None or c.metric in self.references) else None
            if bound is None:
                continue
            feasible &= {">=": x >= bound, ">": x > bound, "<=": x <= bound, "<": x < bound}[c.op]
        return vecs, feasible

    def observed_front(self) -> list[list[float]]:
        """The feasible observed points beyond the reference, in the minimisation space."""
        out = []
        for pts in self.obs.values():
            for o in pts:
                if not all(m in o.values for m in self.metrics):
                    continue
                vec, ok = self._vectors({m: np.asarray(o.values[m]) for m in self.metrics})
                if bool(ok) and all(v < r for v, r in zip(vec.tolist(), self.hv_reference)):
                    out.append([float(x) for x in vec.tolist()])
        return out

    def _improvement(self, front: list[list[float]], base_hv: float, vecs: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        """Per sample: the hypervolume its feasible points add to `front` ([n_samples])."""
        ref = np.asarray(self.hv_reference)
        gains = np.zeros(vecs.shape[0])
        for s in range(vecs.shape[0]):
            pts = vecs[s][feasible[s] & np.all(vecs[s] < ref, axis=-1)]
            if len(pts) == 0:
                continue
            if front:
                arr = np.asarray(front)
                pts = np.asarray([p for p in pts if not np.any(np.all(arr <= p, axis=1))])
                if len(pts) == 0:
                    continue
            gains[s] = hypervolume([*front, *pts.tolist()], self.hv_reference) - base_hv
        return gains

    def _front_with(self, running: Mapping[str, Mapping[str, Any]]) -> list[list[float]]:
        """The observed feasible front plus the predicted mean of the running trials' points still to come."""
        front = self.observed_front()
        for key, params in running.items():
            done = max((o.epoch for o in self.obs.get(key, [])), default=0.0)
            rest = [e for e in self.epochs.points(params) if e > done + 1e-9]
            if not rest:
                continue
            vecs, ok = self._vectors(self._mean(params, rest))
            front.extend(v.tolist() for v, f in zip(vecs, ok) if f and np.all(v < np.asarray(self.hv_reference)))
        return front

    def _on_front(self, key: str, front: list[list[float]]) -> bool:
        """Whether one of run `key`'s feasible points is non-dominated among `front` (the observed points)."""
        mine = []
        for o in self.obs.get(key, []):
            if all(m in o.values for m in self.metrics):
                vec, ok = self._vectors({m: np.asarray(o.values[m]) for m in self.metrics})
                if bool(ok):
                    mine.append(vec.tolist())
        return any(not any(all(a <= b for a, b in zip(f, v)) and f != v for f in front) for v in mine)

    def _key(self, params: Mapping[str, Any]) -> tuple:
        return tuple(repr(params.get(d.name)) for d in self.encoding.dims)

    def score(self, params: Mapping[str, Any], front: list[list[float]], base_hv: float,
              rng: np.random.Generator, after: float = 0.0) -> tuple[float, float]:
        """(expected HV improvement per epoch of the points after epoch `after`, chance that they improve)."""
        pts = [e for e in self.epochs.points(params) if e > after + 1e-9]
        if not pts:
            return 0.0, 0.0
        samples = self._sample(params, pts, self.samples, rng)
        vecs, ok = self._vectors(samples)
        gains = self._improvement(front, base_hv, vecs, ok)
        cost = max(self.epochs.length(params) - after, 1e-9)
        threshold = MIN_GAIN * max(base_hv, 1e-12)
        return float(gains.mean()) / cost, float(np.mean(gains > threshold))

    def propose(self, running: Mapping[str, Mapping[str, Any]] = {}, exclude: Iterable[Mapping[str, Any]] = (),
                rng: np.random.Generator | None = None, screen: int = 48) -> tuple[dict[str, Any] | None, float]:
        """The configuration with the largest expected improvement per epoch (None when nothing is left)."""
        rng = rng or np.random.default_rng(self.seed)
        cands = self.candidates(rng, exclude=[*exclude, *running.values()])
        if not cands:
            return None, 0.0
        front = self._front_with(running)
        base_hv = hypervolume(front, self.hv_reference) if front else 0.0
        if len(cands) > screen:  # cheap screen: the optimistic mean (mean + 1 sd) of the points, per epoch
            keys = self._optimistic_all(cands, front, base_hv)
            cands = [cands[i] for i in sorted(range(len(cands)), key=lambda i: -keys[i])[:screen]]
        scored = [(self.score(p, front, base_hv, rng)[0], i) for i, p in enumerate(cands)]
        best, i = max(scored)
        return cands[i], best

    def _optimistic_all(self, cands: Sequence[Mapping[str, Any]], front: list[list[float]],
                        base_hv: float) -> list[float]:
        """The screen's score of each candidate: the improvement per epoch of its points' optimistic values
        (mean + 1 sd). One GP prediction per metric for every candidate's points at once (the per-candidate
        calls were most of a suggestion's time: about 1 s of the driver's CPU per trial on 2 cores)."""
        points = [self.epochs.points(p) for p in cands]
        X = np.concatenate([self.features(p, pts) for p, pts in zip(cands, points)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimistic = {}
            for m, gp in self._gps.items():
                mean, sd = gp.predict(X, return_std=True)
                obj = next((o for o in self.objectives if o.name == m), None)
                optimistic[m] = mean + sd if (obj is None or obj.mode == "max") else mean - sd
        ends = np.cumsum([len(pts) for pts in points])
        out = []
        for p, stop, n in zip(cands, ends, (len(pts) for pts in points)):
            vecs, ok = self._vectors({m: v[stop - n:stop] for m, v in optimistic.items()})
            out.append(float(self._improvement(front, base_hv, vecs[None], ok[None])[0]) / self.epochs.length(p))
        return out

    # ---- a running trial: go on or stop ------------------------------------------------------------

    def outlook(self, key: str, running: Mapping[str, Mapping[str, Any]] = {},
                rng: np.random.Generator | None = None) -> tuple[float, float]:
        """(expected HV improvement per remaining epoch, chance that a remaining point is feasible and adds
        hypervolume) of trial `key`, given its points so far and the others' observations."""
        params = self.params.get(key)
        if params is None or not self._gps:
            return math.inf, 1.0
        rng = rng or np.random.default_rng(self.seed + len(self.obs.get(key, [])))
        done = max((o.epoch for o in self.obs.get(key, [])), default=0.0)
        others = {k: p for k, p in running.items() if k != key}
        front = self._front_with(others)
        base_hv = hypervolume(front, self.hv_reference) if front else 0.0
        return self.score(params, front, base_hv, rng, after=done)

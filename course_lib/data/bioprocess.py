"""Two small process data sets (t, COD1, Xv1) from a batch bioreactor model, and a CSV loader.

Document 000's autoencoder data (three variables named t, COD1 and Xv1: time, chemical oxygen
demand and viable biomass) were never published. We generate stand-ins from the textbook model of
a batch culture with Monod growth kinetics (Monod 1949):

    mu(S)  = mu_max * S / (K_s + S)               specific growth rate, 1/h
    dX/dt  = (mu(S) - k_d) * X                    viable biomass, mg/L
    dS/dt  = -mu(S) * X / Y_xs                    substrate, measured as COD, mg/L

under two operating conditions, sampled at regular times with a little measurement noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

COLUMNS = ["t", "COD1", "Xv1"]
MIN_ROWS = 20


@dataclass(frozen=True)
class BatchCulture:
    """Parameters of one batch run (units in the comments)."""

    mu_max: float  # maximum specific growth rate, 1/h
    K_s: float  # half-saturation constant, mg COD/L
    Y_xs: float  # biomass yield, mg biomass per mg COD consumed
    k_d: float  # death / decay rate, 1/h
    S0: float  # initial COD, mg/L
    X0: float  # initial viable biomass, mg/L
    hours: float  # length of the run, h
    noise: float  # relative measurement noise (standard deviation / value)


CONDITIONS = {
    1: BatchCulture(mu_max=0.35, K_s=800.0, Y_xs=0.45, k_d=0.010, S0=5000.0, X0=100.0, hours=48.0, noise=0.01),
    2: BatchCulture(mu_max=0.22, K_s=400.0, Y_xs=0.55, k_d=0.025, S0=3000.0, X0=250.0, hours=48.0, noise=0.02),
}


def simulate(culture: BatchCulture, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free COD and biomass of ``culture`` at times ``t`` (h)."""
    def rhs(_t: float, state: np.ndarray) -> list[float]:
        S, X = max(state[0], 0.0), max(state[1], 0.0)
        mu = culture.mu_max * S / (culture.K_s + S)
        return [-mu * X / culture.Y_xs, (mu - culture.k_d) * X]

    sol = solve_ivp(rhs, (0.0, culture.hours), [culture.S0, culture.X0], t_eval=t, method="LSODA",
                    rtol=1e-8, atol=1e-6)
    if not sol.success:
        raise RuntimeError(f"the bioreactor model could not be integrated: {sol.message}")
    return np.clip(sol.y[0], 0, None), np.clip(sol.y[1], 0, None)


def make_process_dataset(condition: int = 1, n_samples: int = 200, seed: int = 0) -> pd.DataFrame:
    """The data set of operating ``condition`` (1 or 2): ``n_samples`` rows of t, COD1, Xv1."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {sorted(CONDITIONS)}, got {condition!r}")
    if n_samples < MIN_ROWS:
        raise ValueError(f"n_samples must be at least {MIN_ROWS}, got {n_samples}")
    culture = CONDITIONS[condition]
    t = np.linspace(0.0, culture.hours, n_samples)
    cod, biomass = simulate(culture, t)
    rng = np.random.default_rng(seed + 1000 * condition)
    cod = cod * (1 + culture.noise * rng.standard_normal(n_samples))
    biomass = biomass * (1 + culture.noise * rng.standard_normal(n_samples))
    return pd.DataFrame({"t": t, "COD1": np.clip(cod, 0, None), "Xv1": np.clip(biomass, 0, None)})


def load_process_csv(path: Path | str) -> pd.DataFrame:
    """A user's own three-column CSV (t, COD1, Xv1), checked; one clear ValueError per problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a CSV file with columns {', '.join(COLUMNS)}")
    df = pd.read_csv(path, skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    if sorted(df.columns) != sorted(COLUMNS):
        raise ValueError(f"{path.name}: expected exactly the columns {COLUMNS}, found {list(df.columns)}")
    df = df[COLUMNS]
    for col in COLUMNS:
        numeric = pd.to_numeric(df[col], errors="coerce")
        bad = numeric.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path.name}: column {col!r} must be numeric; row {row + 2} holds {df[col].iloc[row]!r}")
        df[col] = numeric.astype(float)
    missing = df.isna()
    if missing.any().any():
        rows = (np.flatnonzero(missing.any(axis=1).to_numpy()) + 2).tolist()
        cols = [c for c in COLUMNS if missing[c].any()]
        raise ValueError(f"{path.name}: empty or NaN values in column(s) {cols} on line(s) {rows[:10]}")
    if not np.isfinite(df.to_numpy()).all():
        raise ValueError(f"{path.name}: infinite values are not allowed")
    if len(df) < MIN_ROWS:
        raise ValueError(f"{path.name}: {len(df)} rows is too few; expected at least {MIN_ROWS}")
    return df


@dataclass
class Splits:
    """Train / test / validation rows scaled to [0, 1] with the training set's minima and maxima."""

    train: np.ndarray  # (n_train, 3)
    test: np.ndarray  # (n_test, 3)
    validation: np.ndarray  # (n_val, 3)
    minimum: np.ndarray  # (3,) per-column minimum of the training rows
    maximum: np.ndarray  # (3,) per-column maximum of the training rows

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Back to the data's own units."""
        return scaled * (self.maximum - self.minimum) + self.minimum


def split_and_scale(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                    seed: int = 0) -> Splits:
    """Shuffle rows into train / test / validation and min-max scale all three by the training rows."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    data = df[COLUMNS].to_numpy(dtype=float)
    order = np.random.default_rng(seed).permutation(len(data))
    n_train, n_test = int(round(fractions[0] * len(data))), int(round(fractions[1] * len(data)))
    parts = np.split(data[order], [n_train, n_train + n_test])
    lo, hi = parts[0].min(axis=0), parts[0].max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = [(p - lo) / span for p in parts]
    return Splits(*scaled, minimum=lo, maximum=lo + span)

"""The side tables beside a results CSV, by the key a run's result carries their lines under (harness/record/schema.py
INTERNAL): the launcher writes them, merge and the bundle carry them."""
from __future__ import annotations

from harness.record.curves import CURVES
from harness.record.loadgen_profiles import PROFILES

BY_INTERNAL_KEY = {"load_curve": CURVES, "loadgen_profiles": PROFILES}

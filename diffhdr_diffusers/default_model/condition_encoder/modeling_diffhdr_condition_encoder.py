"""Re-export of an installed diffhdr_diffusers class (pip install diffhdr-diffusers)."""
from diffhdr_diffusers import ConditionEncoder  # noqa: F401

"""ns3: a reproducible NaturalSpeech 3 pipeline (FACodec + factorized diffusion)."""
from ns3.runtime import passive_openmp

# Before anything imports torch: its OpenMP runtime reads the wait policy once, when it loads.
passive_openmp()

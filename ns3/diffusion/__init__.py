"""Factorized masked discrete diffusion (NS3 §3.3): the corruption schedule, the iterative sampler and the models."""

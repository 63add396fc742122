"""Training recipes: what turns a typed spec (built by ``ns3.builders`` from params) into a training run.

A recipe assembles data streams, models, losses and a solver from plain arguments and runs it; the
Prefect flows in ``pipelines/`` only call it, log and write metrics. The pieces every recipe shares
(the resume guard, rank-0 writes) live in `ns3.recipes.state`.
"""

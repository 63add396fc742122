"""Training loops: `BaseSolver` (checkpoint/resume, DDP, guard, tracking) and task solvers built on it."""
from ns3.solvers.base import BaseSolver, BatchSource, NonFiniteLossError, TrainResult, epoch_generator, replay_epochs

__all__ = ["BaseSolver", "BatchSource", "NonFiniteLossError", "TrainResult", "epoch_generator", "replay_epochs"]

"""One split's epoch in numbers: :class:`EpochTally` (what the runner keeps per batch, reduced once
per epoch) and :func:`epoch_line` (the epoch's log line)."""

from __future__ import annotations

import numpy as np
import torch


class EpochTally:
    """One split's sums over an epoch: loss and samples, and per batch the detached scores, labels
    and spike counts. Those are kept as they are and compared or reduced once, at the end of the
    epoch: a small tensor op costs about as much as a batch of the default network's encoding.
    ``penalty``: the sum of the learner's regularisation terms (detached, read once per epoch)."""

    def __init__(self, predict):
        self.predict = predict  # the decoder's scores -> classes (stateless)
        self.loss_sum, self.count, self.steps, self.classes = 0.0, 0, 1, 0
        self.penalty: torch.Tensor | None = None
        self.batches = 0
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.counts: dict[str, list[torch.Tensor]] = {}
        self._correct, self._checked = 0, 0  # correct predictions among the first `_checked` batches
        self._spikes: dict[str, tuple[float, int]] = {}  # per population: spikes among the first n batches

    def add(self, loss_value: float, scores: torch.Tensor, y: torch.Tensor, counts: dict[str, torch.Tensor],
            steps: int, penalty: torch.Tensor | None = None) -> None:
        n = y.shape[0]
        self.batches += 1
        if penalty is not None:
            self.penalty = penalty.detach() if self.penalty is None else self.penalty + penalty.detach()
        self.loss_sum += loss_value * n
        self.count += n
        self.steps = steps
        self.classes = max(self.classes, int(scores.shape[-1]) if scores.dim() > 1 else 0)
        self.scores.append(scores.detach() if scores.requires_grad else scores)
        self.labels.append(y)
        for name, c in counts.items():
            self.counts.setdefault(name, []).append(c)

    def predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every prediction and label of the epoch, ``[samples]`` each."""
        if not self.scores:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        return self.predict(torch.cat(self.scores)).reshape(-1), torch.cat(self.labels).reshape(-1)

    def running_correct(self) -> int:
        """Correct predictions so far, for the progress bar (predicts only the new batches)."""
        if self._checked < len(self.scores):
            pred = self.predict(torch.cat(self.scores[self._checked:])).reshape(-1)
            self._correct += int((pred == torch.cat(self.labels[self._checked:]).reshape(-1)).sum())
            self._checked = len(self.scores)
        return self._correct

    def running_spikes(self, name: str) -> float:
        """Spikes of population ``name`` so far, for the progress bar (sums only the new batches)."""
        total, seen = self._spikes.get(name, (0.0, 0))
        parts = self.counts[name]
        total += sum(float(c.sum()) for c in parts[seen:])
        self._spikes[name] = (total, len(parts))
        return total

    def neuron_counts(self) -> dict[str, np.ndarray]:
        """Each spiking population's spike count per neuron over the epoch (flattened, float64)."""
        return {name: torch.stack(cs).sum(0).reshape(-1).cpu().numpy().astype(np.float64)
                for name, cs in self.counts.items()}


def epoch_line(epoch: int, epochs: int, metrics: dict) -> str:
    """The epoch's log line, readable at 100 columns: loss/accuracy per split and the learning
    rate (every metric is in metrics.csv / metrics.jsonl)."""
    def number(value, digits: int) -> str:
        return f"{value:.{digits}f}" if isinstance(value, (int, float)) and abs(value) < 1e4 else \
            (f"{value:.3g}" if isinstance(value, (int, float)) else "-")

    parts = [f"epoch {epoch}/{epochs}  loss/acc"]
    for split in ("train", "val", "test"):
        loss, accuracy = metrics.get(f"{split}/loss"), metrics.get(f"{split}/accuracy")
        if loss is not None or accuracy is not None:
            parts.append(f"{split} {number(loss, 4)}/{number(accuracy, 3)}")
    if isinstance(metrics.get("lr"), (int, float)):
        parts.append(f"lr {metrics['lr']:.3g}")
    return "  ".join(parts)

"""What `imbalance-lab-doctor --why` trains on: a stratified row sample, an epoch cap and a few
seeds, so that its 8 configs x 3 seeds end in a few minutes on 2 cores for the forum-sized table
(269,501 x 157; measured: see README, "Diagnose first"). The test split stays whole, so every
variant is scored on the same rows as a full run would be.

No TensorFlow here: the command checks the budget before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from imbalance_lab.errors import ImbalanceLabError

WHY_ROWS = 20_000      # training rows per run: enough for a 157-feature table's signal to show
WHY_VAL_ROWS = 5_000   # validation rows (early stopping, the stall rule): one forward pass per epoch
WHY_EPOCHS = 20        # the forum's collapse shows in its first epoch; recoveries show within 20
WHY_SEEDS = 3          # 3 seeds a config: an effect must clear the spread they give


@dataclass(frozen=True)
class Budget:
    rows: int = WHY_ROWS
    epochs: int = WHY_EPOCHS
    seeds: int = WHY_SEEDS
    val_rows: int = WHY_VAL_ROWS

    def checked(self) -> Budget:
        if self.rows < 100:
            raise ImbalanceLabError(f"--why-rows={self.rows} is too few to train on; give at least 100, e.g. --why-rows=20000.")
        if self.epochs < 1:
            raise ImbalanceLabError(f"--why-epochs={self.epochs} must be at least 1, e.g. --why-epochs=20.")
        if not 2 <= self.seeds <= 10:
            raise ImbalanceLabError(f"--why-seeds={self.seeds} must be 2 to 10: one seed gives no spread to tell an "
                                    f"effect from noise; e.g. --why-seeds=3.")
        return self

    def overrides(self, cfg: DictConfig) -> dict[str, str]:
        """The budget as overrides of the user's config (`++`: the keys need not be in the dataset's YAML)."""
        epochs = min(int(cfg.trainer.epochs), self.epochs)
        return {"++dataset.max_train_rows": str(self.rows), "++dataset.max_val_rows": str(self.val_rows),
                "trainer.epochs": str(epochs), "trainer.patience": str(min(int(cfg.trainer.patience), epochs))}

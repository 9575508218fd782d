"""The tests' tiny network, defined once: its configuration for in-process tests, and the same
network as train.py flags for the tests that run the command line."""
import dataclasses

from tf_partfash.config import ModelConfig

# 147 px keeps conv5 8x8 for the part crops; 16 / 8 wide fc layers train in seconds.
MODEL = ModelConfig(image_size=147, hidden_size=16, signature_size=8, backbone_norm='batch')


def train_flags(**train) -> list[str]:
  """train.py flags of the tiny network (every ModelConfig field that differs from its default)
  and of a short training: batches of 24, one epoch per stage unless `train` says otherwise,
  one worker, a checkpoint at every chance."""
  settings = {f.name: getattr(MODEL, f.name) for f in dataclasses.fields(MODEL)
              if getattr(MODEL, f.name) != f.default}
  settings.update(batch_size=24, stage1_epochs=1, stage2_epochs=1, workers=1,
                  checkpoint_every_secs=0)
  settings.update(train)
  return [f'--{name}={value}' for name, value in settings.items()]

"""``pnc-pack demo``: the whole path of a clone delta, end to end, on real MNIST digits.

sender (this process)                          receiver (a fresh process, empty Hub cache)
  train target on 0-4, source on 5-9             verify (digest + trusted signature)
  build the 1-class and the 3-class clone        apply (pins checked, clone rebuilt)
  sign both                                      evaluate Ori / Tar / Avg, export the offline model
  [--hub: publish models, push deltas]           detach: the target comes back bit for bit

See :func:`pnc_pack.demo.run.run_demo`.
"""

from pnc_pack.demo.run import DemoConfig, run_demo  # noqa: F401

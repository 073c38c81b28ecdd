"""Trace and replay: `jit(fn)` records the array calls of one call of fn, then replays them.

A training step in this engine is mostly Python: each op makes a Tensor and a graph node,
backward walks the graph and runs formulas that make more of them, the optimizer loops
over parameters. Only the array calls at the bottom (NumPy's or CuPy's) compute anything.
A jit records that bottom layer once and afterwards runs only it.

Read it in this order. The core, in one sitting:
1. traced.py: the traced values, TracedArray and TracedScalar, which stand for fn's
   arrays and numbers while it is recorded and report every call to the recorder;
2. recorder.py: the Recorder, which runs each call eagerly and appends it to the tape;
3. tape.py: the tape as plain data (calls with Slots, guards, sources, write-backs);
4. interpret.py: the plain interpreter that replays a tape one call at a time; this is
   `jit(fn, optimize=False)`;
5. jitted.py: `jit` itself: key, replay or record, keep the tapes.
Then what makes it safe and fast:
- walk.py: the one walker over nested values (tuples, lists, dicts);
- guards.py: what a recording depends on besides its arguments (closure variables,
  globals, attributes, layers), checked before each replay so that it is never stale;
  the Stateful protocol of optimizers and other objects whose state a step reads and
  writes; the write-backs that leave what the eager call leaves;
- passes.py and codegen.py: the passes, each a function from tape to tape; `jit(fn)`
  is the core, then these passes. `print(jitted.tape)` shows the tape after them;
  compare it with the tape of `jit(fn, optimize=False)`.

Why not record the ops (each Function.forward) instead: the backward formulas and the
optimizer also compute on raw arrays (relu's mask x > 0, the momentum buffer), and a
tape of ops alone would replay those as the constants of the first call, silently.
"""
from .guards import Stateful
from .jitted import Jitted, jit
from .tape import Tape

__all__ = ["jit", "Jitted", "Tape", "Stateful"]

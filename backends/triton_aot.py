"""What a Triton module costs on a GPU this machine may not have: registers, spills and shared
memory of each kernel, from Triton's own compiler run ahead of time for sm_<arch>.

Triton decides whether it interprets when it is imported (TRITON_INTERPRET), so the compile runs
in a subprocess without that variable. The registers and spills come from the cubin Triton
built (`cuobjdump -res-usage`, shipped inside Triton's wheel), the shared memory from Triton's
metadata (it is dynamic shared memory, which the cubin does not count). Cached by the text.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from loopweave.errors import TargetError
from loopweave.toolchain import cache_dir, content_key, write_once

_SCRIPT = r"""
import base64, json, sys
from loopweave.backends.triton import aot_kernels
from loopweave.pipeline import front_end
request = json.load(sys.stdin)
kernel = front_end(request["dsl"], request["kernel"])
compiled = aot_kernels(kernel, request["module"], arch=request["arch"])
print(json.dumps({name: {"cubin": base64.b64encode(c.asm["cubin"]).decode(),
                         "shared": int(c.metadata.shared), "num_warps": int(c.metadata.num_warps)}
                  for name, c in compiled.items()}))
"""

_USAGE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def triton_tool(name: str) -> str | None:
    """A CUDA tool from Triton's wheel (it matches the cubins Triton builds), else on PATH."""
    spec = importlib.util.find_spec("triton")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "backends" / "nvidia" / "bin" / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def compile_stats(dsl_source: str, kernel_name: str | None, module_source: str,
                  arch: int = 90) -> dict[str, dict[str, int]]:
    """Per @triton.jit function of `module_source` (rendered from the kernel of `dsl_source`)
    for sm_<arch>: registers, spill bytes (local memory), shared memory bytes and warps.
    Raises TargetError when Triton or cuobjdump cannot tell here."""
    cached = cache_dir("triton") / (content_key(dsl_source, str(kernel_name), module_source,
                                                str(arch)) + ".stats.json")
    write_once(cached, lambda: json.dumps(_measure(dsl_source, kernel_name, module_source,
                                                   arch)))
    return json.loads(cached.read_text())


def _measure(dsl_source: str, kernel_name: str | None, module_source: str,
             arch: int) -> dict[str, dict[str, int]]:
    cuobjdump = triton_tool("cuobjdump")
    if cuobjdump is None:
        raise TargetError("cuobjdump is not installed (it ships inside Triton's wheel)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    request = json.dumps({"dsl": dsl_source, "kernel": kernel_name, "module": module_source,
                          "arch": arch})
    done = subprocess.run([sys.executable, "-c", _SCRIPT], input=request, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
        raise TargetError(f"Triton could not compile the module for sm_{arch}: {last}")
    stats = {}
    with tempfile.TemporaryDirectory(prefix="lw-cubin-") as tmp:
        for name, built in json.loads(done.stdout.strip().splitlines()[-1]).items():
            path = Path(tmp) / f"{name}.cubin"
            path.write_bytes(base64.b64decode(built["cubin"]))
            usage = subprocess.run([cuobjdump, "-res-usage", str(path)], capture_output=True,
                                   text=True, timeout=120)
            found = _USAGE.search(usage.stdout)
            if usage.returncode != 0 or found is None:
                raise TargetError(f"cuobjdump could not read the cubin of {name}: "
                                  f"{usage.stderr.strip()[-300:]}")
            registers, _, _, local = map(int, found.groups())
            stats[name] = {"registers": registers, "spill_bytes": local,
                           "shared_bytes": built["shared"], "threads": 32 * built["num_warps"]}
    return stats

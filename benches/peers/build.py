"""Build once, cached in the workdir (not timed): the checkpoint, then each engine's model."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from .common import LLAMA_FTYPES

logger = logging.getLogger("compare_peers")


def run(cmd: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
    logger.info("$ %s", " ".join(cmd))
    with log.open("w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    if rc:
        tail = log.read_text(errors="replace")[-3000:]
        msg = f"exit {rc}: {' '.join(cmd)}\n{tail}"
        raise RuntimeError(msg)


def peer_env() -> dict[str, str]:
    """The environment for peers: without our dev PYTHONPATH, offline for the hub."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return env


_SYNTH = """
import sys
from qwen_edge.export.synth import synth_checkpoint
synth_checkpoint(sys.argv[1], sys.argv[2], seed=0, dtype="bfloat16", force=True)
"""
_EXPORT = """
import sys
from qwen_edge.export import ExportConfig, export_model
export_model(sys.argv[1], sys.argv[2], ExportConfig(quant=sys.argv[3], block_size=32,
             max_context=4096, symmetric=sys.argv[4] != "asym"), force=True)
"""
_OPTIMUM_QUANTIZE = """
import sys
import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
src, out, bits = sys.argv[1], sys.argv[2], int(sys.argv[3])
quant = MatMulNBitsQuantizer(onnx.load(src), bits=bits, block_size=32, is_symmetric=True,
                             accuracy_level=4)
quant.process()
quant.model.save_model_to_file(out, use_external_data_format=True)
"""
_QUANTIZE = """
import sys, llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = int(sys.argv[4])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), p))
"""


def llama_source(args: argparse.Namespace, work: Path) -> Path:
    """llama-cpp-python's sdist (its vendored llama.cpp has convert_hf_to_gguf.py + gguf-py)."""
    if args.llama_src is not None:
        return args.llama_src
    found = sorted((work / "src").glob("llama_cpp_python-*/vendor/llama.cpp"))
    if found:
        return found[-1]
    version = subprocess.check_output(
        [args.llama_python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
        text=True, env=peer_env()).strip()
    (work / "src").mkdir(exist_ok=True)
    run([args.llama_python, "-m", "pip", "download", f"llama-cpp-python=={version}",
         "--no-binary", ":all:", "--no-deps", "-d", str(work / "src")],
        log=work / "llama-sdist.log", cwd=work, env=peer_env())
    with tarfile.open(next((work / "src").glob("llama_cpp_python-*.tar.gz"))) as tar:
        tar.extractall(work / "src", filter="data")
    return max((work / "src").glob("llama_cpp_python-*/vendor/llama.cpp"))


def prepare(args: argparse.Namespace, work: Path, peers: list[str]) -> dict[str, Path]:
    """Checkpoint, then each engine's model, each built once (skipped when present)."""
    ckpt = work / f"ckpt-{args.shape}"
    if not (ckpt / "config.json").exists():
        run([sys.executable, "-c", _SYNTH, args.shape, str(ckpt)], log=work / "synth.log",
            cwd=work)
    models: dict[str, Path] = {}
    if "qwen-edge" in peers:
        sym = "-asym" if args.asymmetric else ""
        models["qwen-edge"] = work / f"pkg-{args.shape}-{args.quant}{sym}"
        if not (models["qwen-edge"] / "qwen_edge.json").exists():
            run([sys.executable, "-c", _EXPORT, str(ckpt), str(models["qwen-edge"]),
                 args.quant, "asym" if args.asymmetric else "default"],
                log=work / f"export-{args.shape}-{args.quant}{sym}.log", cwd=work)
    if "genai" in peers:
        models["genai"] = work / f"genai-{args.shape}-{args.quant}"
        if not (models["genai"] / "genai_config.json").exists():
            # Qwen3.5: the builder exports a ConditionalGeneration checkpoint's decoder for an
            # embeddings-in model only with exclude_embeds=false (otherwise it expects the
            # vision pipeline to feed inputs_embeds). exclude_mtp=true leaves the MTP head
            # out, as our export does; with it, genai 0.18.0 writes a lm_head shared between
            # model.onnx and mtp.onnx (`shared_initializers`) that og.Model refuses on CPU
            # ("GetMemoryInfo for CPU should not be used"). The vision tower is left out by
            # the builder. Text-only Qwen3_5ForCausalLM is not accepted by builder 0.18.0.
            extra = (["--extra_options", "exclude_embeds=false", "exclude_mtp=true"]
                     if args.shape.startswith(("qwen3.5", "tiny-qwen3.5")) else [])
            run([args.genai_python, "-m", "onnxruntime_genai.models.builder", "-i", str(ckpt),
                 "-o", str(models["genai"]), "-p", args.quant, "-e", "cpu",
                 "-c", str(work / "genai-cache"), *extra],
                log=work / f"genai-build-{args.shape}-{args.quant}.log", cwd=work,
                env=peer_env())
    if "optimum" in peers:
        fp32 = work / f"optimum-{args.shape}-fp32"
        models["optimum"] = work / f"optimum-{args.shape}-{args.quant}"
        if not (fp32 / "model.onnx").exists():
            run([str(Path(args.optimum_python).parent / "optimum-cli"), "export", "onnx",
                 "--model", str(ckpt), "--task", "text-generation-with-past", "--no-post-process",
                 str(fp32)],
                log=work / f"optimum-export-{args.shape}.log", cwd=work, env=peer_env())
        if not (models["optimum"] / "model.onnx").exists():
            models["optimum"].mkdir(exist_ok=True)
            run([args.optimum_python, "-c", _OPTIMUM_QUANTIZE, str(fp32 / "model.onnx"),
                 str(models["optimum"] / "model.onnx"), args.quant.removeprefix("int")],
                log=work / f"optimum-quantize-{args.shape}-{args.quant}.log", cwd=work,
                env=peer_env())
    if "llama" in peers:
        name, ftype = LLAMA_FTYPES[args.quant]
        f16 = work / f"gguf-{args.shape}-f16.gguf"
        models["llama"] = work / f"gguf-{args.shape}-{name}.gguf"
        if not f16.exists():
            src = llama_source(args, work)
            env = peer_env()
            env["PYTHONPATH"] = str(src / "gguf-py")  # the gguf-py that matches the script
            run([args.convert_python or args.genai_python, str(src / "convert_hf_to_gguf.py"),
                 str(ckpt), "--outtype", "f16", "--outfile", str(f16)],
                log=work / f"gguf-convert-{args.shape}.log", cwd=work, env=env)
        if not models["llama"].exists():
            run([args.llama_python, "-c", _QUANTIZE, str(f16), str(models["llama"]),
                 str(ftype), str(args.threads)],
                log=work / f"gguf-quantize-{args.shape}-{name}.log", cwd=work, env=peer_env())
    return models

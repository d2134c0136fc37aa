// The CUDA backend as the addon sees it: libtunekit_cuda.so is opened only when asked for, every way
// of not getting a GPU ends in one clear line, the CPU addon never links CUDA, and — where a GPU is
// present — every op of the CUDA kernel table matches the CPU table on the same inputs.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CudaInfo, native } from "../lib/native";

const root = path.join(__dirname, "..");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const addonPath: string = require("node-gyp-build").path(root);
const libName = "libtunekit_cuda.so";
const hasDriver = fs.existsSync("/proc/driver/nvidia/gpus") && fs.readdirSync("/proc/driver/nvidia/gpus").length > 0;
// The loader's own candidates after TUNEKIT_CUDA_LIB, and every library this checkout may have built
// (npm run build:cuda, scripts/check-cuda-build.sh).
const candidateLibs = [
  path.join(root, "build-cuda", "Release", libName),
  path.join(root, "build-cuda", libName),
  path.join(path.dirname(addonPath), libName),
].filter((p) => fs.existsSync(p));
const builtLibs = [...candidateLibs, path.join(root, "build-cuda-check", libName)].filter((p) => fs.existsSync(p));

interface ChildResult { mappedBefore: boolean; mappedAfter: boolean; info: CudaInfo }

// A fresh process (the loader keeps its first outcome for the life of a process) with TUNEKIT_CUDA_LIB
// set to `lib` (or unset): loads the addon, looks at its own mappings, then asks for the backend.
function child(lib: string | undefined): ChildResult {
  const script = `
    const fs = require("fs");
    const mapped = () => fs.readFileSync("/proc/self/maps", "utf8").includes(${JSON.stringify(libName)});
    const addon = require(process.argv[1]);
    const mappedBefore = mapped();
    const info = addon.cudaInfo();
    process.stdout.write(JSON.stringify({ mappedBefore, mappedAfter: mapped(), info }));`;
  const env = { ...process.env };
  delete env.TUNEKIT_CUDA_LIB;
  if (lib !== undefined) env.TUNEKIT_CUDA_LIB = lib;
  const r = spawnSync(process.execPath, ["-e", script, addonPath], { env, encoding: "utf8", timeout: 60000 });
  if (r.status !== 0) throw new Error(`child exited with ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildResult;
}

const REASON = /^CUDA backend unavailable: /;

describe("CUDA backend loader", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-cuda-"));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("cudaAvailable() and cudaInfo() agree; unavailable means a one-line reason", () => {
    const info = native.cudaInfo();
    expect(native.cudaAvailable()).toBe(info.available);
    if (info.available) {
      expect(info.reason).toBe("");
      expect(path.basename(info.library ?? "")).toBe(libName);
      expect(info.device).toMatch(/\(sm_\d+, [\d.]+ GiB\)$/);
    } else {
      expect(info.reason).toMatch(REASON);
      expect(info.reason).not.toMatch(/[\r\n]/);
      // Either the library is missing (and the fix is named) or it loaded and found no usable device.
      expect(info.reason).toMatch(/not found \(tried .*\); build it with npm run build:cuda|loaded, but no usable CUDA device/);
      expect(info.library).toBeUndefined();
    }
  });

  test("without an NVIDIA driver the backend is unavailable", () => {
    const info = native.cudaInfo();
    if (hasDriver) {
      // With a driver the only acceptable failure is a library that was never built.
      if (!info.available) expect(info.reason).toMatch(/not found .*npm run build:cuda/);
    } else {
      expect(info.available).toBe(false);
      expect(native.cudaAvailable()).toBe(false);
    }
  });

  test("the addon does not open the CUDA library when it loads", () => {
    const r = child(builtLibs[0]);
    expect(r.mappedBefore).toBe(false);
    // Asking for it is what opens it (when there is one to open and it is good).
    if (builtLibs.length > 0) expect(r.mappedAfter).toBe(true);
  });

  test("a missing library lists every path tried, TUNEKIT_CUDA_LIB first", () => {
    const missing = path.join(tmp, "nowhere", libName);
    const r = child(missing);
    if (r.info.available) {
      expect(r.info.library).not.toBe(missing);
      return;
    }
    expect(r.info.reason).toMatch(REASON);
    expect(r.info.reason).not.toMatch(/[\r\n]/);
    expect(r.info.reason).toContain(`TUNEKIT_CUDA_LIB=${missing}: not found`);
    const addonDir = path.dirname(addonPath);
    if (candidateLibs.length === 0) {
      // Nothing built anywhere: every candidate is named, in order, and so is the fix.
      const tried = r.info.reason.indexOf("TUNEKIT_CUDA_LIB=");
      expect(r.info.reason.indexOf(path.join(root, "build-cuda", "Release", libName))).toBeGreaterThan(tried);
      expect(r.info.reason).toContain(path.join(root, "build-cuda", libName) + ": not found");
      expect(r.info.reason).toContain(path.join(addonDir, libName) + ": not found");
      expect(r.info.reason).toMatch(/; build it with npm run build:cuda \(needs nvcc\)$/);
    } else {
      // A later candidate loaded: the skipped one is still reported.
      expect(r.info.reason).toMatch(/loaded, but no usable CUDA device: .* \(tried before it: TUNEKIT_CUDA_LIB=/);
    }
  });

  test("a file that is not a shared library is refused with the loader's error", () => {
    const fake = path.join(tmp, libName);
    fs.writeFileSync(fake, "this is not an ELF file\n");
    const r = child(fake);
    if (r.info.available) {
      expect(r.info.library).not.toBe(fake);
      return;
    }
    expect(r.info.reason).not.toMatch(/[\r\n]/);
    expect(r.info.reason).toMatch(new RegExp(`TUNEKIT_CUDA_LIB=${fake.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: .*(invalid ELF header|file too short)`));
  });

  test("a shared library without the tunekit entry points is refused", () => {
    // The addon itself: a real shared object, but not the CUDA backend.
    const r = child(addonPath);
    if (r.info.available) {
      expect(r.info.library).not.toBe(addonPath);
      return;
    }
    expect(r.info.reason).toContain(`TUNEKIT_CUDA_LIB=${addonPath}: not a tunekit CUDA library (entry points missing)`);
  });

  test("a built library says why it cannot run (no driver or device), or runs", () => {
    if (builtLibs.length === 0) {
      // Not built in this checkout: the reason must say so and how to fix it.
      const r = child(undefined);
      expect(r.info.available).toBe(false);
      expect(r.info.reason).toMatch(/not found \(tried .*\); build it with npm run build:cuda \(needs nvcc\)$/);
      return;
    }
    const r = child(builtLibs[0]);
    if (r.info.available) {
      expect(r.info.library).toBe(builtLibs[0]);
    } else {
      expect(r.info.reason).not.toMatch(/[\r\n]/);
      expect(r.info.reason).toMatch(
        new RegExp(`^CUDA backend unavailable: ${builtLibs[0].replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} loaded, but no usable CUDA device: `),
      );
      if (!hasDriver) expect(r.info.reason).toMatch(/cudaGetDeviceCount failed: .*\(cuda\w+\)/);
    }
  });

  test("the CPU addon links no CUDA library", () => {
    const elf = (args: string[]) => {
      const r = spawnSync("readelf", [...args, addonPath], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`readelf ${args.join(" ")} ${addonPath} failed: ${r.stderr || r.error}`);
      return r.stdout;
    };
    const needed = elf(["-d"]).split("\n").filter((l) => l.includes("(NEEDED)"));
    expect(needed.length).toBeGreaterThan(0);  // a real dynamic section was read
    expect(needed.join("\n")).toMatch(/libc\.so/);
    expect(needed.join("\n")).not.toMatch(/cuda|cublas|nvrtc|nvidia/i);
    // Nor any CUDA symbol left for the dynamic linker to find elsewhere.
    const undefinedSyms = elf(["--dyn-syms", "-W"]).split("\n").filter((l) => / UND /.test(l));
    expect(undefinedSyms.length).toBeGreaterThan(0);
    expect(undefinedSyms.filter((l) => /\bcu[A-Z]\w+|\bcuda[A-Z]\w+/.test(l))).toEqual([]);
  });
});

const info = native.cudaInfo();
if (!info.available) {
  // The one allowed skip: the comparisons below need a GPU.
  console.log(`CUDA cases skipped: ${info.reason}`);
  test.skip(`CUDA kernels match the CPU kernels (skipped: ${info.reason})`, () => undefined);
} else {
  describe(`CUDA kernels on ${info.device} match the CPU kernels (${native.isa()})`, () => {
    const checks = native.cudaCheckOps();
    test("every op the CUDA backend supports is compared, and the 16-bit GEMM", () => {
      const supported = native.ops().filter((op) => native.supportsOp("cuda", op));
      expect(supported.length).toBeGreaterThan(0);
      for (const op of [...supported, "gemm_half"]) expect([op, checks.some((c) => c.op === op)]).toEqual([op, true]);
    });
    // Each case's tolerance (native/cuda_check.cc), relative to the largest |CPU value|.
    test.each(checks)("$op: $name", (c) => {
      expect(c.maxAbsDiff).toBeLessThanOrEqual(c.tolerance * Math.max(1, c.refMaxAbs));
    });
  });
}

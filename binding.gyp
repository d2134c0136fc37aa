# The CPU addon tunekit.node. Sources come from native/sources.json (shared with CMakeLists.txt).
# The kernels are compiled three times, once per ISA, into static libraries; dispatch.cc picks one at
# run time, so one binary runs well on any x86-64 CPU.
{
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0"],
    "cflags_cc": ["-O3", "-fexceptions", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-math-errno"],
    "cflags!": ["-O2", "-O0"],
    # SWALLOW_UNTHROWABLE: a Node-API call failing while a worker_thread's env is torn down must not
    # turn into a C++ exception thrown out of a C callback (std::terminate aborted the process).
    "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    # include/tunekit/: the op list, args structs and backend interface shared with cuda/.
    "include_dirs": ["include"],
    "conditions": [["OS=='mac'", {"xcode_settings": {"GCC_ENABLE_CPP_EXCEPTIONS": "YES"}}]]
  },
  "targets": [
    {
      "target_name": "tk_scalar",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').kernels.join(' ')\")"],
      "defines": ["TK_ISA=scalar"]
    },
    {
      "target_name": "tk_avx2",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').kernels.join(' ')\")"],
      "defines": ["TK_ISA=avx2"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "tk_avx512",
      "type": "static_library",
      "sources": ["<!@(node -p \"require('./native/sources.json').kernels.join(' ')\")"],
      "defines": ["TK_ISA=avx512"],
      "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "tunekit",
      "sources": [
        "<!@(node -p \"require('./native/sources.json').base.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').binding.join(' ')\")"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except",
        "tk_scalar", "tk_avx2", "tk_avx512"
      ],
      "libraries": ["-lpthread", "-ldl"]
    }
  ]
}

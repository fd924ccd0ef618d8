{
  # ff_static_openblas=1 links OpenBLAS statically, so the npm prebuild runs where no libopenblas
  # is installed (scripts/prebuild.js sets GYP_DEFINES=ff_static_openblas=1); a source build
  # links the system's shared libopenblas.
  # Only the Node-API entry points are exported (hidden visibility, csrc/binding/addon.map), so
  # the cpu addon and a cuda or cuda-emu addon in one process never bind to each other's code;
  # -z nodelete: see CMakeLists.txt (ff_addon); NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: see its
  # ff_binding.
  "variables": {"ff_static_openblas%": "0"},
  "targets": [
    {
      "target_name": "fourierformer_cpu",
      "sources": ["<!@(node scripts/list-sources.js cpu)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-std=c++20", "-O3", "-fno-math-errno", "-fopenmp", "-fexceptions", "-Wno-psabi",
                    "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
      "ldflags": ["-fopenmp", "-Wl,--version-script=<(module_root_dir)/csrc/binding/addon.map", "-Wl,-z,nodelete"],
      "conditions": [
        ["ff_static_openblas==1",
         {"libraries": ["-l:libopenblas.a", "-Wl,--exclude-libs,ALL"]},
         {"libraries": ["-lopenblas"]}]
      ]
    }
  ]
}

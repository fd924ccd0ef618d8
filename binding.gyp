{
  "targets": [
    {
      "target_name": "fourierformer_cpu",
      "sources": [
        "csrc/binding/addon.cpp",
        "csrc/binding/storage.cpp",
        "csrc/binding/tensors.cpp",
        "csrc/binding/op_args.cpp",
        "csrc/binding/fourier_metric.cpp",
        "csrc/cpu/memory.cpp",
        "csrc/cpu/elementwise.cpp",
        "csrc/cpu/fourier_metric.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-O3", "-fopenmp", "-fexceptions"],
      "ldflags": ["-fopenmp"]
    }
  ]
}

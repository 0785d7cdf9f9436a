{
  # node-gyp build of the same sources as native/CMakeLists.txt (cmake-js, what `npm ci` runs).
  # Output: build/Release/icosfl_native.node. Offline only where npm's config sets nodedir (it is
  # /usr on these machines); elsewhere node-gyp downloads the Node headers once.
  "targets": [
    {
      "target_name": "icosfl_native",
      "sources": ["native/src/addon.cpp", "native/src/dense-step-addon.cpp", "native/src/dense-step.cpp", "native/src/ring.cpp", "native/src/sd-notify.cpp"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fvisibility=hidden"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      }
    }
  ]
}

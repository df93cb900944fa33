"""lmgate_fuzz_target: one libFuzzer target, usable with either toolchain.

For `name`, defines
  :<name>_lib          the LLVMFuzzerTestOneInput library (alwayslink);
  :<name>_fuzzer       the fuzzer: libFuzzer under --config=fuzz (clang), else a binary that runs
                       the inputs named on its command line once (reproduce a crash with gcc);
  :<name>_corpus_test  runs every file of corpus/<name>/ once — the regression test in //...
"""

def lmgate_fuzz_target(name, srcs, deps):
    native.cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )
    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        deps = [":" + name + "_lib"] + select({
            ":libfuzzer": [],
            "//conditions:default": [":corpus_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        args = ["tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]),
        deps = [
            ":" + name + "_lib",
            ":corpus_main",
        ],
    )

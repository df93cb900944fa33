"""cc_grpc_library: C++ protobuf + gRPC codegen with Debian's protoc and grpc_cpp_plugin.

No @com_github_grpc_grpc is needed (unavailable offline). The package that calls the macro is the
proto root: `import "lmgate/v1/common.proto"` resolves inside it, and C++ code includes the
generated headers the same way: `#include "lmgate/v1/inference.grpc.pb.h"`.
"""

def cc_grpc_library(name, srcs, deps = [], grpc = True, visibility = None, **kwargs):
    """Generates and compiles <x>.pb.{h,cc} (+ <x>.grpc.pb.{h,cc} if grpc) for each .proto.

    Args:
      name: cc_library name.
      srcs: .proto files below this package (paths relative to it).
      deps: other cc_grpc_library targets of the same proto root whose protos are imported.
      grpc: also run grpc_cpp_plugin.
      visibility: visibility of the cc_library.
      **kwargs: passed to cc_library.
    """
    outs = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("srcs must be .proto files: " + src)
        base = src[:-len(".proto")]
        outs += [base + ".pb.h", base + ".pb.cc"]
        if grpc:
            outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    dep_protos = [d + "_protos" for d in deps]
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + dep_protos,
        visibility = visibility,
    )

    pkg = native.package_name()
    grpc_flags = (" --grpc_out=$(GENDIR)/" + pkg +
                  " --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin") if grpc else ""
    native.genrule(
        name = name + "_codegen",
        srcs = srcs + dep_protos,
        outs = outs,
        # System protoc finds the well-known types (google/protobuf/*.proto) in /usr/include.
        cmd = "/usr/bin/protoc -I" + pkg + " --cpp_out=$(GENDIR)/" + pkg + grpc_flags + " " +
              " ".join([pkg + "/" + s for s in srcs]),
        message = "protoc + grpc_cpp_plugin for " + name,
    )

    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        includes = ["."],
        deps = deps + [
            "//third_party/system:protobuf",
        ] + (["//third_party/system:grpc++"] if grpc else []),
        visibility = visibility,
        **kwargs
    )

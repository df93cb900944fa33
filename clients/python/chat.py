#!/usr/bin/python3
"""Streams one chat through lmgate (lmgate.v1.Inference/Chat) and prints its stats, or lists the
host's models (lmgate.v1.ModelManager/ListModels).

    bash clients/python/generate.sh                      # stubs from proto/ into clients/python/gen
    /usr/bin/python3 clients/python/chat.py --addr 127.0.0.1:50051 "Say hello"
    /usr/bin/python3 clients/python/chat.py --list-models

Answer tokens go to stdout as they arrive; progress and the final stats line go to stderr. The API
key comes from --key or $LMGATE_API_KEY and is sent as "authorization: Bearer <key>". Needs
Debian's python3-grpcio and python3-protobuf (/usr/bin/python3), nothing from pip.
"""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))
try:
    import grpc
    from lmgate.v1 import common_pb2, inference_pb2, inference_pb2_grpc
    from lmgate.v1 import model_manager_pb2, model_manager_pb2_grpc
except ImportError as e:
    sys.exit(f"chat.py: {e}. Run `bash clients/python/generate.sh` and use /usr/bin/python3 "
             "(Debian's python3-grpcio).")


def list_models(channel, metadata, timeout):
    stub = model_manager_pb2_grpc.ModelManagerStub(channel)
    resp = stub.ListModels(model_manager_pb2.ListModelsRequest(), metadata=metadata,
                           timeout=timeout)
    for m in resp.models:
        kind = common_pb2.ModelType.Name(m.type).removeprefix("MODEL_TYPE_")
        state = common_pb2.ModelState.Name(m.state).removeprefix("MODEL_STATE_")
        instances = ",".join(i.identifier for i in m.instances)
        print(f"{m.key:<40} {kind.lower():<10} {state.lower():<11} {instances}")


def chat(channel, metadata, timeout, model, system, prompt):
    messages = [inference_pb2.ChatMessage(role="system", content=system)] if system else []
    messages.append(inference_pb2.ChatMessage(role="user", content=prompt))
    stub = inference_pb2_grpc.InferenceStub(channel)
    call = stub.Chat(inference_pb2.ChatRequest(model=model, messages=messages),
                     metadata=metadata, timeout=timeout)
    deltas = 0
    try:
        for resp in call:
            event = resp.WhichOneof("event")
            if event == "content_delta":
                deltas += 1
                print(resp.content_delta, end="", flush=True)
            elif event == "reasoning_delta":
                print(resp.reasoning_delta, end="", file=sys.stderr, flush=True)
            elif event == "model_loading":
                print(f"loading model {100 * resp.model_loading.fraction:3.0f}%", file=sys.stderr)
            elif event == "queued":
                print(f"queued at position {resp.queued.position}", file=sys.stderr)
            elif event == "result":
                s = resp.result.stats
                print()
                print(f"-- {s.model_key} via {common_pb2.Driver.Name(s.driver)}: "
                      f"{s.prompt_tokens} prompt + {s.completion_tokens} completion tokens in "
                      f"{deltas} deltas, {s.tokens_per_second:.1f} tok/s, "
                      f"TTFT {s.time_to_first_token.ToTimedelta().total_seconds():.3f}s, "
                      f"stop {inference_pb2.StopReason.Name(s.stop_reason)}", file=sys.stderr)
    except KeyboardInterrupt:
        call.cancel()  # lmgate stops the upstream prediction too
        raise


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", default=os.environ.get("LMGATE_ADDR", "127.0.0.1:50051"))
    p.add_argument("--model", default="", help="model key or instance; empty = lmgate's default")
    p.add_argument("--key", default=os.environ.get("LMGATE_API_KEY", ""),
                   help="API key (default $LMGATE_API_KEY)")
    p.add_argument("--system", default="", help="optional system prompt")
    p.add_argument("--list-models", action="store_true", help="list the host's models and exit")
    p.add_argument("--timeout", type=float, default=300, help="deadline of the call, seconds")
    p.add_argument("prompt", nargs="*")
    args = p.parse_args()
    if not args.list_models and not args.prompt:
        p.error("give a PROMPT or --list-models")

    # Ctrl-C raises KeyboardInterrupt even if SIGINT was ignored when we were started (a
    # background job of a non-interactive shell); chat() then cancels the call.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    metadata = [("authorization", f"Bearer {args.key}")] if args.key else []
    # Plaintext, like grpcurl -plaintext; use grpc.secure_channel for a TLS port.
    with grpc.insecure_channel(args.addr) as channel:
        try:
            if args.list_models:
                list_models(channel, metadata, args.timeout)
            else:
                chat(channel, metadata, args.timeout, args.model, args.system,
                     " ".join(args.prompt))
        except grpc.RpcError as e:
            sys.exit(f"error: {e.code().name}: {e.details()}")
        except KeyboardInterrupt:
            sys.exit("error: CANCELLED: interrupted (Ctrl-C)")


if __name__ == "__main__":
    main()

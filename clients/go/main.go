// Command lmgate-go-example streams one chat through lmgate (lmgate.v1.Inference/Chat) and prints
// its stats, or lists the host's models (lmgate.v1.ModelManager/ListModels).
//
//	lmgate-go-example --addr 127.0.0.1:50051 --model qwen/qwen3-4b "Say hello"
//	lmgate-go-example --list-models
//
// Answer tokens go to stdout as they arrive; progress and the final stats line go to stderr. The
// API key comes from --key or $LMGATE_API_KEY and is sent as "authorization: Bearer <key>".
// Stubs are generated from proto/ (see README.md); they are not committed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lmgatev1 "lmgate/clients/go/lmgatev1"
)

func main() {
	addr := flag.String("addr", envOr("LMGATE_ADDR", "127.0.0.1:50051"), "lmgate address host:port")
	model := flag.String("model", "", "model key or instance; empty = lmgate's default model")
	key := flag.String("key", os.Getenv("LMGATE_API_KEY"), "API key (default $LMGATE_API_KEY)")
	system := flag.String("system", "", "optional system prompt")
	listModels := flag.Bool("list-models", false, "list the host's models and exit")
	timeout := flag.Duration("timeout", 5*time.Minute, "deadline of the call")
	flag.Parse()

	// Plaintext, like grpcurl -plaintext. (grpc.WithInsecure works from grpc-go 1.33, Debian 12's,
	// to today's; newer code may use credentials/insecure, which 1.33 lacks.)
	conn, err := grpc.Dial(*addr, grpc.WithInsecure())
	if err != nil {
		fail(err)
	}
	defer conn.Close()

	// Ctrl-C cancels the call; lmgate stops the upstream prediction too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*key)
	}

	if *listModels {
		err = list(ctx, lmgatev1.NewModelManagerClient(conn))
	} else {
		prompt := strings.Join(flag.Args(), " ")
		if prompt == "" {
			fmt.Fprintln(os.Stderr, "usage: lmgate-go-example [flags] PROMPT | --list-models")
			os.Exit(2)
		}
		err = chat(ctx, lmgatev1.NewInferenceClient(conn), *model, *system, prompt)
	}
	if err != nil {
		fail(err)
	}
}

func list(ctx context.Context, mm lmgatev1.ModelManagerClient) error {
	resp, err := mm.ListModels(ctx, &lmgatev1.ListModelsRequest{})
	if err != nil {
		return err
	}
	for _, m := range resp.GetModels() {
		var ids []string
		for _, i := range m.GetInstances() {
			ids = append(ids, i.GetIdentifier())
		}
		fmt.Printf("%-40s %-10s %-11s %s\n", m.GetKey(),
			enumName(m.GetType().String(), "MODEL_TYPE_"),
			enumName(m.GetState().String(), "MODEL_STATE_"), strings.Join(ids, ","))
	}
	return nil
}

func chat(ctx context.Context, inf lmgatev1.InferenceClient, model, system, prompt string) error {
	req := &lmgatev1.ChatRequest{Model: model}
	if system != "" {
		req.Messages = append(req.Messages, &lmgatev1.ChatMessage{Role: "system", Content: system})
	}
	req.Messages = append(req.Messages, &lmgatev1.ChatMessage{Role: "user", Content: prompt})
	stream, err := inf.Chat(ctx, req)
	if err != nil {
		return err
	}
	deltas := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch ev := resp.GetEvent().(type) {
		case *lmgatev1.ChatResponse_ContentDelta:
			deltas++
			fmt.Print(ev.ContentDelta)
		case *lmgatev1.ChatResponse_ReasoningDelta:
			fmt.Fprint(os.Stderr, ev.ReasoningDelta)
		case *lmgatev1.ChatResponse_ModelLoading:
			fmt.Fprintf(os.Stderr, "loading model %3.0f%%\n", 100*ev.ModelLoading.GetFraction())
		case *lmgatev1.ChatResponse_Queued:
			fmt.Fprintf(os.Stderr, "queued at position %d\n", ev.Queued.GetPosition())
		case *lmgatev1.ChatResponse_Result:
			s := ev.Result.GetStats()
			fmt.Println()
			fmt.Fprintf(os.Stderr,
				"-- %s via %s: %d prompt + %d completion tokens in %d deltas, %.1f tok/s, TTFT %.3fs, stop %s\n",
				s.GetModelKey(), s.GetDriver(), s.GetPromptTokens(), s.GetCompletionTokens(), deltas,
				s.GetTokensPerSecond(), s.GetTimeToFirstToken().AsDuration().Seconds(), s.GetStopReason())
		}
	}
}

// enumName turns MODEL_STATE_NOT_LOADED into "not_loaded".
func enumName(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

// fail prints a gRPC status as "error: NOT_FOUND: message" and exits 1.
func fail(err error) {
	st := status.Convert(err)
	name := fmt.Sprint(st.Code())
	if int(st.Code()) < len(codeNames) {
		name = codeNames[st.Code()]
	}
	fmt.Fprintf(os.Stderr, "error: %s: %s\n", name, st.Message())
	os.Exit(1)
}

// codeNames spells status codes as the proto docs and the other examples do (Go says "Canceled").
var codeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED"}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

module lmgate/clients/go

go 1.19

// The versions Debian 12 packages (what clients/go/build.sh builds against offline). With network
// access, `go mod tidy` after generate.sh resolves these and writes go.sum.
require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

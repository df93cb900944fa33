// clients/go/main.go, built offline from Debian's Go packages by //clients/go:lmgate-go-example,
// against lmgate.
import { clientSuite } from "./client_suite.mjs";
import { runfile } from "./gateway.mjs";

clientSuite("Go", { cmd: runfile("LMGATE_GO_EXAMPLE"), args: [] });

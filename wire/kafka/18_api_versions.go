package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4
//
// Behavior:
//   - Lists every API key the server's handler table serves, with the
//     version range each handler declares, so it never advertises more;
//     the exception is Produce, listed from v0 as Kafka 4 lists it (see
//     00_produce.go).
//   - A version above 4 is answered before its body is parsed (see
//     unsupportedApiVersions in conn.go): a v0 response with
//     UNSUPPORTED_VERSION and the table, after which clients retry at v4.
//   - v3+ checks ClientSoftwareName/Version as Kafka does (alphanumerics,
//     with '-' and '.' inside) and answers INVALID_REQUEST otherwise.
//   - No features are advertised (KIP-584): there is nothing to finalize.
//
// Version notes:
//   - v1: ThrottleMillis
//   - v3: flexible, client software name and version
//   - v5 (KIP-1242, cluster and node id checks) is not served yet.
var apiVersionsHandler = apiHandler{key: int16(kmsg.ApiVersions), minVersion: 0, maxVersion: 4, handle: handleApiVersions}

func handleApiVersions(s *Server, _ *requestContext, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (!validSoftwareField(req.ClientSoftwareName) || !validSoftwareField(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	resp.ApiKeys = append([]kmsg.ApiVersionsResponseApiKey(nil), s.versions...)
	respond(resp)
}

// validSoftwareField matches Kafka's pattern for client software names and
// versions: [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
func validSoftwareField(v string) bool {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if v == "" || !alnum(v[0]) || !alnum(v[len(v)-1]) {
		return false
	}
	for i := 1; i < len(v)-1; i++ {
		if c := v[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

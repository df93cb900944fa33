#include "services/http_ingress/routes.h"

namespace lmgate::http_ingress {

absl::Status RegisterRoutes(const RouteEnv* env, Router& router) {
  using Ex = std::shared_ptr<Exchange>;
  for (absl::Status st : {
           router.Add("GET", "/v1/models",
                      [env](Ex ex, const std::string&) { HandleListModels(*env, ex); }),
           router.Add("GET", "/v1/models/*",
                      [env](Ex ex, const std::string& id) { HandleGetModel(*env, ex, id); }),
           router.Add("POST", "/v1/chat/completions",
                      [env](Ex ex, const std::string&) { HandleChat(*env, ex); }),
           router.Add("POST", "/v1/completions",
                      [env](Ex ex, const std::string&) { HandleCompletion(*env, ex); }),
           router.Add("POST", "/v1/embeddings",
                      [env](Ex ex, const std::string&) { HandleEmbeddings(*env, ex); }),
           router.Add("POST", "/v1/responses",
                      [env](Ex ex, const std::string&) { HandleCreateResponse(*env, ex); }),
           router.Add("GET", "/v1/responses/*",
                      [env](Ex ex, const std::string& id) { HandleGetResponse(*env, ex, id); }),
           router.Add("DELETE", "/v1/responses/*",
                      [env](Ex ex, const std::string& id) { HandleDeleteResponse(*env, ex, id); }),
       }) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace lmgate::http_ingress

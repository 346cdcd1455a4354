#include "streamtrain/deploy/predict_request.h"

#include <catch2/catch.hpp>
#include <string>

#include "streamtrain/deploy/served_model_spec.h"

namespace streamtrain::deploy {
namespace {

std::string ErrorOf(std::string_view body, size_t feature_count = 3, size_t max_instances = 4) {
  auto r =
      ParsePredictRequest(body, {.feature_count = feature_count, .max_instances = max_instances});
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == ErrorCode::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("predict requests parse into a row-major batch", "[deploy]") {
  auto r =
      ParsePredictRequest(R"({"instances": [[1, 2.5, -3], [0, 255, 1e-3]]})", {.feature_count = 3});
  REQUIRE(r.ok());
  REQUIRE(r->instance_count == 2);
  REQUIRE(r->features == std::vector<float>{1.0f, 2.5f, -3.0f, 0.0f, 255.0f, 1e-3f});
}

TEST_CASE("bad predict requests name the field and the reason", "[deploy]") {
  REQUIRE(ErrorOf("{not json") == "body: not valid JSON");
  REQUIRE(ErrorOf("[1,2]") == "body: not a JSON object");
  REQUIRE(ErrorOf("{}") == "instances: missing");
  REQUIRE(ErrorOf(R"({"instances": 3})") == "instances: not an array");
  REQUIRE(ErrorOf(R"({"instances": []})") == "instances: empty");
  REQUIRE(ErrorOf(R"({"instances": [[1,2,3],[1,2,3],[1,2,3],[1,2,3],[1,2,3]]})") ==
          "instances: 5 instances, at most 4");
  REQUIRE(ErrorOf(R"({"instances": [[1,2,3], 7]})") == "instances[1]: not an array");
  REQUIRE(ErrorOf(R"({"instances": [[1,2,3], [1,2]]})") == "instances[1]: 2 values, expected 3");
  REQUIRE(ErrorOf(R"({"instances": [[1,"2",3]]})") == "instances[0][1]: not a finite number");
  REQUIRE(ErrorOf(R"({"instances": [[1,null,3]]})") == "instances[0][1]: not a finite number");
  REQUIRE(ErrorOf(R"({"instances": [[1,2,1e39]]})") == "instances[0][2]: not a finite number");
  REQUIRE(ErrorOf(R"({"instances": [[1,2,-1e400]]})") == "body: not valid JSON");
}

TEST_CASE("the model spec round trips through its JSON text", "[deploy]") {
  ServedModelSpec spec;
  const std::string text = ServedModelSpecToJson(spec);
  REQUIRE(text == R"({"model":"lenet5","input_shape":[1,28,28],"num_classes":10,)"
                  R"("feature_scale":0.00392156886,"feature_shift":0})");
  auto parsed = ParseServedModelSpec(text);
  REQUIRE(parsed.ok());
  REQUIRE(*parsed == spec);
  REQUIRE(parsed->feature_count() == 784);

  ServedModelSpec odd{.model = "mlp:64",
                      .input_shape = {3, 8, 8},
                      .num_classes = 5,
                      .feature_scale = 0.1f / 3.0f,
                      .feature_shift = -0.4242424f};
  auto back = ParseServedModelSpec(ServedModelSpecToJson(odd));
  REQUIRE(back.ok());
  REQUIRE(*back == odd);
}

TEST_CASE("bad model specs name the field", "[deploy]") {
  auto error = [](std::string_view text) {
    auto r = ParseServedModelSpec(text);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  REQUIRE(error("").find("empty") != std::string::npos);
  REQUIRE(error("{").find("not valid JSON") != std::string::npos);
  REQUIRE(error(R"({"input_shape":[1],"num_classes":2})") == "model_spec.model: missing");
  REQUIRE(error(R"({"model":"x","input_shape":[0],"num_classes":2})")
              .starts_with("model_spec.input_shape:"));
  REQUIRE(error(R"({"model":"x","input_shape":[4],"num_classes":1})")
              .starts_with("model_spec.num_classes:"));
  REQUIRE(error(R"({"model":"x","input_shape":[4],"num_classes":2,"feature_scale":0})")
              .starts_with("model_spec.feature_scale:"));
}

}  // namespace streamtrain::deploy

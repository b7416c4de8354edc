// Fuzz target: config.json -> Config -> ArchSpec (the architecture registry and every
// architecture file in src/model/archs/).
//
// The input is decoded by decode_config_input (config_input.hpp, shared with the regression test
// that replays findings): a whole config.json (text starting with '{') or edit records over the
// fixture configs (tests/data/hf/*/config.json), which reach the numeric edge cases (0, negative,
// huge, fractional sizes) far faster than mutating JSON text.
// Either way, arch_from_config must return an ArchSpec that passes its own checks or throw
// nnterp::Error; and the token id settings a generation_config.json (or config.json) holds,
// Config::token_ids("eos_token_id") / ("pad_token_id"), read from the same JSON as
// generation_config.json, must give the ids as written or throw nnterp::Error.
#include <nlohmann/json.hpp>

#include <optional>
#include <vector>

#include "config_input.hpp"
#include "fuzz_common.hpp"
#include "io/config_json.hpp"
#include "model/arch.hpp"
#include "nnterp/config.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;
using nlohmann::json;

namespace {

const std::vector<json>& base_configs() {
  static const std::vector<json> all = load_base_configs(std::string(NNTERP_TEST_DATA) + "/hf");
  return all;
}

// generation_config.json: the ids as written (an integer, a list of integers, absent or null:
// none), or an nnterp::Error.
void check_token_ids(const json& j) {
  accepts([&] {
    const Config generation = ConfigAccess::from_json(j, "generation_config.json");
    for (const char* key : {"eos_token_id", "pad_token_id"}) {
      accepts([&] {
        std::vector<int64_t> ids;
        try {
          ids = generation.token_ids(key);
        } catch (const Error& e) {
          require(e.message().find(key) != std::string::npos, "a token id error names the setting");
          throw;
        }
        const auto it = j.find(key);
        if (it == j.end() || it->is_null()) require(ids.empty(), "no token ids for an absent or null setting");
        else if (it->is_array()) require(ids.size() == it->size(), "one token id per list element");
        else require(ids.size() == 1 && *it == json(ids[0]), "an integer setting is its one token id");
      });
    }
  });
}

void check(json j) {
  accepts([&] {
    Config config = ConfigAccess::from_json(std::move(j), "config.json");
    config.checkpoint_dtype();
    model::ArchSpec a = model::arch_from_config(config);
    require(a.layers.size() == static_cast<size_t>(a.num_layers), "one LayerSpec per layer");
    require(a.num_layers > 0 && a.hidden > 0 && a.vocab > 0 && a.attn.num_heads > 0 && a.attn.num_kv_heads > 0 &&
                a.attn.head_dim > 0,
            "positive sizes");
    require(!a.weights.empty(), "a weight map");
    // Multi-head latent attention reads its queries, keys and values from kv_a / kv_b (and q or
    // q_a / q_b), not from a fused qkv.
    const bool mla = a.attn.mla.kv_lora_rank > 0;
    for (Weight needed : {Weight::Embed, mla ? Weight::KvA : Weight::Qkv, mla ? Weight::KvB : Weight::O, Weight::O,
                          Weight::LmHead})
      require(a.weights.count(needed) == 1, "a source for every weight the decoder always reads");
    for (const auto& [weight, source] : a.weights) require(!source.parts.empty(), "every weight has HF sources");
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  base_configs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<json> j = decode_config_input(data, size, base_configs());
  if (!j) return 0;
  check_token_ids(*j);
  check(std::move(*j));
  return 0;
}

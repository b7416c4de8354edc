// Resolving a model name to a local folder, offline: a path, or a HuggingFace hub id looked up
// in the local HuggingFace cache (nothing is ever downloaded).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace nnterp {

// The hub cache folder searched: $HF_HUB_CACHE (or the legacy $HUGGINGFACE_HUB_CACHE), else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (only the
// first that applies, as huggingface_hub does). Empty when none applies.
std::vector<std::filesystem::path> hub_cache_dirs();

// `id_or_path` is an existing folder (returned as is), or a hub id such as "gpt2" or
// "org/name[@revision]", resolved to <cache>/models--org--name/snapshots/<rev>/ using refs/main
// (or the named ref / commit). Throws Error(NotFound) listing every place searched.
std::filesystem::path resolve_model(const std::string& id_or_path);

// The embedded default model (a small LLaMA trained by nnterp, docs/toy_model.md): $NNTERP_DEFAULT_MODEL
// when set, else <prefix>/share/nnterp/models/default next to an installed libnnterp or program,
// else models/default of the source tree the library was built from. Error(NotFound) lists the places.
std::filesystem::path default_model_dir();

}  // namespace nnterp

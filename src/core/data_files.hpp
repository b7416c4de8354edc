// Where nnterp finds its own data files (the embedded default model, plotly.js) whether it runs
// from a build tree or from an installed prefix whose source tree is gone.
#pragma once

#include <filesystem>
#include <string>

namespace nnterp {

// $<env> when `env` is set and non-empty (an Error when that path does not exist: an override is
// never silently ignored); else the first of these that exists:
// <dir of libnnterp>/../share/nnterp/<installed>, <dir of the running program>/../share/nnterp/<installed>,
// and last <the source tree the library was built from>/<in_source>. Error(NotFound) names `what`,
// lists every place tried and says how to point `env` at the file.
std::filesystem::path find_data_path(const char* env, const std::string& installed, const std::string& in_source,
                                     const std::string& what);

}  // namespace nnterp

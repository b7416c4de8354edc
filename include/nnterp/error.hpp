// nnterp's one error type: what went wrong, on which subject (file, tensor, point), and a hint.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nnterp {

enum class ErrorKind {
  Io,               // a file could not be opened, mapped or written
  Format,           // a file's content is malformed (safetensors header, JSON, tokenizer.json)
  Config,           // config.json lacks a key or has a value of the wrong type
  Unsupported,      // a model type or option nnterp does not implement
  MissingWeight,    // a tensor the architecture needs is absent from the checkpoint
  UnexpectedWeight, // a checkpoint tensor no standardized module uses
  Shape,            // a tensor of the wrong shape or dtype
  NotFound,         // a model id that resolves to nothing
  InvalidArgument,  // a caller passed a bad value (index, option, input)
  OutOfOrder,       // a trace asked for a point the forward has already passed
  Tokenizer,        // a tokenizer could not encode/decode the input
  Template,         // a chat template failed to parse or render, or the model has none
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  // `subject` names the thing at fault (a path, a tensor, a point); `hint` says what to do.
  Error(ErrorKind kind, std::string subject, std::string message, std::string hint = "");

  ErrorKind kind() const { return kind_; }
  const std::string& subject() const { return subject_; }
  const std::string& message() const { return message_; }
  const std::string& hint() const { return hint_; }

 private:
  ErrorKind kind_;
  std::string subject_, message_, hint_;
};

// The candidate closest to `query` by edit distance (the first of equals), for "did you mean"
// hints; empty when there are no candidates.
std::string nearest_name(std::string_view query, const std::vector<std::string>& candidates);

// Reading a trace point that the forward pass has already passed.
class OutOfOrderError : public Error {
 public:
  OutOfOrderError(const std::string& requested, const std::string& current);
};

}  // namespace nnterp

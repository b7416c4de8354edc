// Chat templates: nnterp::ChatTemplate, and the tokenizer's apply_chat_template.
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nnterp/chat_template.hpp"

namespace nnterp::python {

void bind_chat(py::module_& m) {
  py::class_<ChatTemplate>(m, "ChatTemplate",
                           "A parsed Jinja2 chat template, rendered as transformers' apply_chat_template renders it.")
      .def(py::init<std::string, std::string>(), py::arg("source"), py::arg("name") = "chat_template")
      .def("render",
           [](const ChatTemplate& t, const std::string& context_json, const std::string& fixed_time,
              bool allow_container_mutation, size_t max_output_bytes, size_t max_loop_iterations,
              int max_recursion_depth) {
             ChatRenderOptions options;
             options.fixed_time = fixed_time;
             options.allow_container_mutation = allow_container_mutation;
             options.max_output_bytes = max_output_bytes;
             options.max_loop_iterations = max_loop_iterations;
             options.max_recursion_depth = max_recursion_depth;
             py::gil_scoped_release release;
             return t.render(context_json, options);
           },
           py::arg("context_json"), py::arg("fixed_time") = "", py::arg("allow_container_mutation") = false,
           py::arg("max_output_bytes") = ChatRenderOptions{}.max_output_bytes,
           py::arg("max_loop_iterations") = ChatRenderOptions{}.max_loop_iterations,
           py::arg("max_recursion_depth") = ChatRenderOptions{}.max_recursion_depth,
           "Renders with the variables of `context_json` (a JSON object).")
      .def_property_readonly("name", &ChatTemplate::name)
      .def_property_readonly("source", &ChatTemplate::source);
}

}  // namespace nnterp::python

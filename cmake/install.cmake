# `cmake --install build --prefix P` installs:
#   P/lib/libnnterp.so*                the library (RUNPATH $ORIGIN)
#   P/include/nnterp/*.hpp             its public headers (libtorch is their only dependency)
#   P/bin/nnterp                       the CLI (RUNPATH $ORIGIN/../lib)
#   P/share/nnterp/models/default/     the embedded default model
#   P/share/nnterp/plotly.min.js       plotly.js for the HTML plots (+ its licence)
#   P/lib/cmake/nnterp/                nnterpConfig.cmake: find_package(nnterp) → nnterp::nnterp
# The library finds its data relative to itself (src/core/data_files.cpp), so the prefix works
# after the source and build trees are deleted, and can be moved as a whole.
include(CMakePackageConfigHelpers)

set(NNTERP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nnterp)

install(TARGETS nnterp EXPORT nnterpTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/nnterp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(TARGETS nnterp_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The default model without its training corpus (models/default/corpus is for `nnterp-train-toy`).
install(DIRECTORY models/default DESTINATION ${CMAKE_INSTALL_DATADIR}/nnterp/models PATTERN corpus EXCLUDE)
install(FILES assets/plotly.min.js assets/plotly.LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/nnterp)

install(EXPORT nnterpTargets NAMESPACE nnterp:: DESTINATION ${NNTERP_CMAKE_DIR})
configure_package_config_file(cmake/nnterpConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/nnterpConfig.cmake
  INSTALL_DESTINATION ${NNTERP_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/nnterpConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nnterpConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/nnterpConfigVersion.cmake
  DESTINATION ${NNTERP_CMAKE_DIR})

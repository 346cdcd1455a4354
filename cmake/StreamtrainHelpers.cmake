# Helpers that keep every target's flags and layout the same.

# Warnings for our own code only (third-party headers are included as SYSTEM).
function(streamtrain_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  # GCC 12 at -O3 reports -Wrestrict on plain std::string code ("a" + std::to_string(n)):
  # a compiler bug (GCC PR105329, fixed in 13), not ours.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(STREAMTRAIN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# streamtrain_add_library(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates streamtrain_<name> (alias streamtrain::<name>) from libs/<name>, exporting
# libs/<name>/include.
function(streamtrain_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(streamtrain_${name} STATIC ${ARG_SOURCES})
  add_library(streamtrain::${name} ALIAS streamtrain_${name})
  target_include_directories(streamtrain_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(streamtrain_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(streamtrain_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  streamtrain_set_warnings(streamtrain_${name})
endfunction()

# streamtrain_add_executable(<name> SOURCES ... DEPS ...)
function(streamtrain_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
  streamtrain_set_warnings(${name})
endfunction()

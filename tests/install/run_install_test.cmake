# Driven by ctest (see CMakeLists.txt here): install, build the consumer, run it.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "install test: `${ARGN}` failed (${result})")
  endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# An instrumented librpa needs the sanitizer runtimes linked into every program.
set(link_flags "")
if(SANITIZE)
  set(link_flags "-fsanitize=address,undefined")
endif()
file(GLOB pkgconfig_dirs ${prefix}/lib*/pkgconfig ${prefix}/lib*/*/pkgconfig)
step(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pkgconfig_dirs}
     ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
     "-DCMAKE_EXE_LINKER_FLAGS=${link_flags}")
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
foreach(program consumer_c consumer_cxx consumer_static consumer_pkgconfig)
  step(${WORK_DIR}/build/${program})
endforeach()
step(${prefix}/bin/rpa --help)

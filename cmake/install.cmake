# `cmake --install`: the public headers, librpa.a, librpa.so, the `rpa` CLI, a
# CMake package and a pkg-config file.
#
# find_package(rpa) gives rpa::rpa, the shared library: its Highway and OpenMP
# dependencies stay inside it, so a consumer needs nothing else. rpa::rpa_static
# (librpa.a) is offered too when the consumer's CMake finds Highway and OpenMP,
# which a static archive's consumer must link itself.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RPA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/rpa)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rpa DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set_target_properties(rpa_shared PROPERTIES EXPORT_NAME rpa)
set_target_properties(rpa PROPERTIES EXPORT_NAME rpa_static)
install(TARGETS rpa_shared EXPORT rpaTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS rpa EXPORT rpaStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS rpa_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT rpaTargets NAMESPACE rpa:: DESTINATION ${RPA_INSTALL_CMAKEDIR})
install(EXPORT rpaStaticTargets NAMESPACE rpa:: DESTINATION ${RPA_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rpaConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/rpaConfig.cmake
                              INSTALL_DESTINATION ${RPA_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/rpaConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/rpaConfig.cmake ${PROJECT_BINARY_DIR}/rpaConfigVersion.cmake
        DESTINATION ${RPA_INSTALL_CMAKEDIR})

# rpa.pc finds its prefix from its own location, so the tree stays relocatable
# (`cmake --install --prefix` anywhere).
file(RELATIVE_PATH RPA_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
set(RPA_PC_CUDA_LIBS "")
if(RPA_WITH_CUDA)
  set(RPA_PC_CUDA_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lpthread")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/rpa.pc.in ${PROJECT_BINARY_DIR}/rpa.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rpa.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(RPA_BUILD_TESTS)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tests/install ${PROJECT_BINARY_DIR}/tests/install)
endif()

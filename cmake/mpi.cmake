# The MPI addon (csrc/mpi): the only binary that links MPI, built against the MPI found here
# (Open MPI and MPICH differ in ABI, so it is built where it runs, or shipped for Open MPI's
# libmpi.so.40). Node-API like the backend addons, but without their binding: it exports the
# host collectives and the communicator table that the backends call (csrc/common/comm_api.h).
find_package(MPI REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)
add_library(fourierformer_mpi MODULE csrc/mpi/addon.cpp csrc/mpi/comm_thread.cpp csrc/mpi/faults.cpp ${CMAKE_JS_SRC})
ff_node_api(fourierformer_mpi)
# The C API only: no C++ bindings from mpi.h (Open MPI's would need libmpi_cxx).
target_compile_definitions(fourierformer_mpi PRIVATE NODE_GYP_MODULE_NAME=fourierformer_mpi OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
target_link_libraries(fourierformer_mpi PRIVATE MPI::MPI_C Threads::Threads ${CMAKE_DL_LIBS})
# -z nodelete: its communication thread runs the addon's code for as long as the process lives.
set_target_properties(fourierformer_mpi PROPERTIES PREFIX "" SUFFIX ".node" LIBRARY_OUTPUT_DIRECTORY ${FF_OUT}/mpi
                                                   LINK_DEPENDS ${PROJECT_SOURCE_DIR}/csrc/binding/addon.map)
target_link_options(fourierformer_mpi PRIVATE "LINKER:--version-script=${PROJECT_SOURCE_DIR}/csrc/binding/addon.map"
                                              "LINKER:-z,nodelete")
if(CMAKE_JS_LIB)
  target_link_libraries(fourierformer_mpi PRIVATE ${CMAKE_JS_LIB})
endif()
install(TARGETS fourierformer_mpi LIBRARY DESTINATION . COMPONENT prebuild-mpi EXCLUDE_FROM_ALL)

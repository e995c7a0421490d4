# GPU backend detection. Looks for nvcc, cuBLAS and NCCL in a CUDA toolkit or in
# NVIDIA's PyPI wheels (scripts/deps.sh --gpu-toolchain installs those under
# ~/.cache/mlscale). Sets MLSCALE_HAVE_GPU and, when ON, defines the imported targets
#   mlscale::cuda    (CUDA runtime + cuBLAS)      mlscale::nccl
# and enables the CUDA language. Says in one line what it found.
set(MLSCALE_HAVE_GPU OFF)
if(MLSCALE_GPU STREQUAL "OFF")
  message(STATUS "mlscale: GPU backend: OFF (MLSCALE_GPU=OFF)")
  return()
endif()

set(MLSCALE_CUDA_ROOT "$ENV{MLSCALE_CUDA_ROOT}" CACHE PATH
    "Folder holding a CUDA toolkit or the 'nvidia' folder of NVIDIA's wheels")
set(_mlscale_cuda_hints)
if(MLSCALE_CUDA_ROOT)
  file(GLOB _wheel_roots "${MLSCALE_CUDA_ROOT}/lib/python3*/site-packages/nvidia")
  list(APPEND _mlscale_cuda_hints ${MLSCALE_CUDA_ROOT} ${MLSCALE_CUDA_ROOT}/nvidia ${_wheel_roots})
endif()
file(GLOB _default_wheel_roots "$ENV{HOME}/.cache/mlscale/cuda-*/lib/python3*/site-packages/nvidia")
list(APPEND _mlscale_cuda_hints ${_default_wheel_roots} /usr/local/cuda /usr)

set(_nvcc "")
set(_cuda_home "")
set(_nccl_home "")
foreach(hint IN LISTS _mlscale_cuda_hints)
  foreach(home ${hint}/cu13 ${hint}/cu12 ${hint})
    if(NOT _nvcc AND EXISTS ${home}/bin/nvcc AND EXISTS ${home}/include/cublas_v2.h)
      set(_nvcc ${home}/bin/nvcc)
      set(_cuda_home ${home})
    endif()
  endforeach()
  foreach(home ${hint}/nccl ${hint})
    if(NOT _nccl_home AND EXISTS ${home}/include/nccl.h)
      set(_nccl_home ${home})
    endif()
  endforeach()
endforeach()

if(_cuda_home)
  find_library(MLSCALE_CUDART_LIBRARY NAMES cudart libcudart.so.13 libcudart.so.12
               PATHS ${_cuda_home}/lib ${_cuda_home}/lib64 NO_DEFAULT_PATH)
  find_library(MLSCALE_CUBLAS_LIBRARY NAMES cublas libcublas.so.13 libcublas.so.12
               PATHS ${_cuda_home}/lib ${_cuda_home}/lib64 NO_DEFAULT_PATH)
  find_library(MLSCALE_CUBLASLT_LIBRARY NAMES cublasLt libcublasLt.so.13 libcublasLt.so.12
               PATHS ${_cuda_home}/lib ${_cuda_home}/lib64 NO_DEFAULT_PATH)
endif()
if(_nccl_home)
  find_library(MLSCALE_NCCL_LIBRARY NAMES nccl libnccl.so.2
               PATHS ${_nccl_home}/lib ${_nccl_home}/lib64 ${_nccl_home}/lib/x86_64-linux-gnu
               NO_DEFAULT_PATH)
endif()

if(NOT _nvcc OR NOT MLSCALE_CUDART_LIBRARY OR NOT MLSCALE_CUBLAS_LIBRARY OR NOT MLSCALE_NCCL_LIBRARY)
  set(_why "nvcc+cuBLAS: ${_cuda_home}; NCCL: ${_nccl_home}")
  if(MLSCALE_GPU STREQUAL "ON")
    message(FATAL_ERROR "mlscale: MLSCALE_GPU=ON but CUDA/NCCL were not found (${_why}). "
            "Run scripts/deps.sh --gpu-toolchain or set MLSCALE_CUDA_ROOT.")
  endif()
  message(STATUS "mlscale: GPU backend: OFF (CUDA toolkit or NCCL not found; scripts/deps.sh --gpu-toolchain installs them)")
  return()
endif()

set(CMAKE_CUDA_COMPILER ${_nvcc} CACHE FILEPATH "nvcc" FORCE)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Ampere, Hopper and Blackwell data-center GPUs; PTX for newer ones.
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 100)
endif()
# CMake 3.25 knows nvcc's flags up to C++17; .cu files stay C++17.
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)

add_library(mlscale::cuda INTERFACE IMPORTED GLOBAL)
target_include_directories(mlscale::cuda SYSTEM INTERFACE ${_cuda_home}/include)
target_link_libraries(mlscale::cuda INTERFACE ${MLSCALE_CUDART_LIBRARY} ${MLSCALE_CUBLAS_LIBRARY}
                      ${MLSCALE_CUBLASLT_LIBRARY})
add_library(mlscale::nccl INTERFACE IMPORTED GLOBAL)
target_include_directories(mlscale::nccl SYSTEM INTERFACE ${_nccl_home}/include)
target_link_libraries(mlscale::nccl INTERFACE ${MLSCALE_NCCL_LIBRARY})
# Wheels ship versioned sonames only and live outside the loader's path.
get_filename_component(_cudart_dir ${MLSCALE_CUDART_LIBRARY} DIRECTORY)
get_filename_component(_nccl_dir ${MLSCALE_NCCL_LIBRARY} DIRECTORY)
set(CMAKE_BUILD_RPATH ${CMAKE_BUILD_RPATH} ${_cudart_dir} ${_nccl_dir})
set(MLSCALE_HAVE_GPU ON)
message(STATUS "mlscale: GPU backend: ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION} at ${_cuda_home}, NCCL at ${_nccl_home})")

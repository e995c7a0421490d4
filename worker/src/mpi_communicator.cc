// MPI_COMM_WORLD as a Communicator, for jobs started by mpirun. A rank that dies is
// handled by mpirun, which stops the others and names it.
#include <mpi.h>

#include <bit>
#include <mutex>

#include "mlscale/worker/communicator.h"

namespace mlscale::worker {
namespace {

std::mutex mpi_mutex;
int mpi_users = 0;
MPI_Op bfloat16_sum = MPI_OP_NULL;

void BFloat16Sum(void* in, void* inout, int* count, MPI_Datatype*) {
  ReduceSum(inout, in, size_t(*count), DataType::kBFloat16);
}

Status Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return Status::Ok();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  return Status(StatusCode::kAborted, std::string(what) + ": " + std::string(text, size_t(length)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    std::lock_guard lock(mpi_mutex);
    if (--mpi_users == 0) {
      MPI_Op_free(&bfloat16_sum);
      MPI_Finalize();
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view name() const override { return "mpi"; }

  Status AllReduceSum(void* data, size_t count, DataType type) override {
    MPI_Datatype mpi_type = MPI_FLOAT;
    MPI_Op op = MPI_SUM;
    switch (type) {
      case DataType::kFloat32: mpi_type = MPI_FLOAT; break;
      case DataType::kFloat64: mpi_type = MPI_DOUBLE; break;
      case DataType::kInt32: mpi_type = MPI_INT32_T; break;
      case DataType::kInt64: mpi_type = MPI_INT64_T; break;
      case DataType::kBFloat16: mpi_type = MPI_UINT16_T; op = bfloat16_sum; break;
    }
    // MPI counts are ints: reduce in slices for larger buffers.
    char* p = static_cast<char*>(data);
    const size_t max_slice = size_t(1) << 30;
    for (size_t done = 0; done < count;) {
      size_t n = std::min(max_slice, count - done);
      MLSCALE_RETURN_IF_ERROR(Check(MPI_Allreduce(MPI_IN_PLACE, p + done * DataTypeSize(type), int(n), mpi_type, op,
                                                  MPI_COMM_WORLD), "MPI_Allreduce"));
      done += n;
    }
    return Status::Ok();
  }
  Status Broadcast(void* data, size_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    const size_t max_slice = size_t(1) << 30;
    for (size_t done = 0; done < bytes;) {
      size_t n = std::min(max_slice, bytes - done);
      MLSCALE_RETURN_IF_ERROR(Check(MPI_Bcast(p + done, int(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"));
      done += n;
    }
    return Status::Ok();
  }
  Status Barrier() override { return Check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  Status Shutdown(const Status& failure) override {
    // A failing rank takes the job down; mpirun reports which rank it was.
    if (!failure.ok()) MPI_Abort(MPI_COMM_WORLD, failure.code() == StatusCode::kAborted ? 2 : 1);
    return Status::Ok();
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

StatusOr<std::unique_ptr<Communicator>> CreateMpiCommunicator() {
  std::lock_guard lock(mpi_mutex);
  if (mpi_users == 0) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      return FailedPrecondition("this MPI does not provide MPI_THREAD_SERIALIZED");
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Op_create(&BFloat16Sum, 1, &bfloat16_sum);
  }
  ++mpi_users;
  return std::unique_ptr<Communicator>(std::make_unique<MpiCommunicator>());
}

}  // namespace mlscale::worker

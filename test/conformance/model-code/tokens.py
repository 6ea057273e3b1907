"""tokens (decoupled): one response per word of text_input, then the final flag alone.

A word "!fail" is answered with an error response instead, so the checks can
compare how an error in the middle of a stream is sent.
"""

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)[0]
            words = text.decode("utf-8").split()
            for index, word in enumerate(words):
                if word == "!fail":
                    error = pb_utils.TritonError(f"the model failed at word {index}")
                    sender.send(pb_utils.InferenceResponse(output_tensors=[], error=error))
                    continue
                outputs = [
                    pb_utils.Tensor("text_output", np.array([word.encode("utf-8")], dtype=np.object_)),
                    pb_utils.Tensor("index", np.array([index], dtype=np.int32)),
                ]
                sender.send(pb_utils.InferenceResponse(output_tensors=outputs))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None

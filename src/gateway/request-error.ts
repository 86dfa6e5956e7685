// The one error the JSON side of the gateway raises: a request body that is not
// a valid request. The gateway answers it INVALID_ARGUMENT, as grpc-gateway does.
export class JsonRequestError extends Error {}

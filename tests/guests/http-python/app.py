"""A wasi:http component in Python, written the way componentize-py's own HTTP example writes
one (bindings for the wasi:http/proxy world, asyncio on its poll loop); it knows nothing of
httpd or mod_wasm. Paths: .../hello answers a greeting with the path it was asked for,
.../echo streams the request body back, .../fail raises."""

import asyncio

import poll_loop
from componentize_py_types import Ok
from poll_loop import Sink, Stream
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        loop = poll_loop.PollLoop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(handle_async(request, response_out))


async def handle_async(request: IncomingRequest, response_out: ResponseOutparam) -> None:
    path = request.path_with_query() or "/"
    route = path.split("?")[0].rsplit("/", 1)[-1]
    if route == "fail":
        raise RuntimeError("http-python fails on purpose")
    if route == "echo":
        content_type = request.headers().get("content-type") or [b"application/octet-stream"]
        response = OutgoingResponse(Fields.from_list([("content-type", content_type[0])]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        source = Stream(request.consume())
        sink = Sink(body)
        while True:
            chunk = await source.next()
            if chunk is None:
                break
            await sink.send(chunk)
        sink.close()
        return
    if route != "hello":
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        response.set_status_code(404)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        sink = Sink(body)
        await sink.send(f"no route {path}\n".encode())
        sink.close()
        return
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain"), ("x-language", b"python")]))
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    sink = Sink(body)
    await sink.send(f"Hello from Python, asked for {path}\n".encode())
    sink.close()

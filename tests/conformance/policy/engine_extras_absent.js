[typeof performance, typeof atob, typeof btoa, typeof queueMicrotask, typeof DOMException, typeof InternalError]

[typeof fetch, typeof Headers, typeof Response, typeof secrets]

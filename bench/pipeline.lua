-- wrk script: 16 pipelined GET / requests per round.
-- Usage: wrk -s bench/pipeline.lua http://127.0.0.1:PORT/
-- wrk counts each of the 16 responses as a request.

init = function(args)
   local r = {}
   for i = 1, 16 do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end

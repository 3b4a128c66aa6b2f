// Being written: the content workflow as an agent over a real chat client.
print("content-agent: not ready yet")

# 20,000 inbox events like a busy day: new conversations, tickets, owners,
# stages, closes, trashes, about 10 % duplicate deliveries and 25 %
# events a rule or the state rejects. Seeded: the same file every time.
# usage: python3 contrib/e2e-events.py [OUT.jsonl]
import json, random
random.seed(7)
out=[]; convs=[]; tickets=[]; n=0
def ev(t, **f):
    global n; n+=1
    e={"id":f"e{n}","type":t}; e.update(f); out.append(e)
while len(out) < 20000:
    r=random.random()
    if r<0.25 or not convs:
        c=f"c{len(convs)}"; convs.append(c); ev("conversation.created",conversation=c,contact=f"u{random.randint(0,2000)}@x.com",subject="help")
    elif r<0.35:
        c=random.choice(convs); t=f"t{len(tickets)}"; tickets.append(t); ev("ticket.created",ticket=t,conversation=c)
    elif r<0.45 and tickets:
        ev("ticket.associated",ticket=random.choice(tickets),conversation=random.choice(convs))
    elif r<0.55:
        ev("conversation.owner_changed",conversation=random.choice(convs),owner=random.choice(["ann","bob",None]))
    elif r<0.65 and tickets:
        ev("ticket.status_changed",ticket=random.choice(tickets),status=random.choice(["new","waiting_on_contact","waiting_on_us","closed"]))
    elif r<0.72:
        ev("conversation.closed",conversation=random.choice(convs))
    elif r<0.76 and tickets:
        ev("ticket.property_changed",ticket=random.choice(tickets),property="priority",value="high")
    elif r<0.80:
        ev("conversation.closed",conversation=f"unknown{random.randint(0,999)}")
    elif r<0.90 and out:
        out.append(dict(random.choice(out)))  # a duplicate delivery
    elif r<0.93:
        ev("conversation.trashed",conversation=random.choice(convs))
    else:
        ev("conversation.reopened",conversation=random.choice(convs))
import sys
with open(sys.argv[1] if len(sys.argv) > 1 else "events.jsonl", "w") as f:
    for e in out: f.write(json.dumps(e)+"\n")

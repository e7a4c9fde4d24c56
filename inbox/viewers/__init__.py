"""The people behind the conversations: one Viewer per Channels user name, however many of the
company's accounts they write to, with the avatar and name contactList gives, and what staff note
and label about them.

Who sees a viewer: staff who are members of at least one account the viewer has a conversation
with (superusers: everyone). Through that, they see the viewer's notes and labels, and the
conversations in their own accounts only; a viewer's conversations with accounts they are not
in stay hidden, and so does the viewer when there is no such account at all (404).
"""
